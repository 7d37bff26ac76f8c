"""Model factories; each file registers itself with ``@register_model``."""
