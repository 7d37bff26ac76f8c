"""Every figure deepscope draws, built once here from typed values, as plotly figures.

The HTML report, the dashboard and notebooks call the same functions; nothing else builds a
figure. One module per subject:

- :mod:`explain.figures.training` — loss curves, gradient flow, activation health, gradient
  through time, spectral exponents, learning curve (from a :class:`explain.History`).
- :mod:`explain.figures.performance` — confusion matrix, per-class scores, reliability diagram,
  confident mistakes.
- :mod:`explain.figures.attribution` — attribution maps, image overlays, method grids, token
  highlighting, deletion and sanity curves, method agreement.
- :mod:`explain.figures.audio` — waveforms, attribution over a log-mel spectrogram and summed
  over its mel bands (which part of a word mattered).
- :mod:`explain.figures.questions` — calibration, shallow baseline, robustness, shift.
- :mod:`explain.figures.predictions`, :mod:`explain.figures.attention` — the dashboard's
  interactive views (class probabilities, a clickable confusion matrix, attention maps).
- :mod:`explain.figures.report` — :func:`section_figures`: a report's sections -> figures.
"""

__all__ = ["attention", "attribution", "audio", "performance", "predictions", "questions", "report",
           "training"]


def __getattr__(name: str):  # the modules load on first use (plotly is imported only then)
    if name in __all__:
        import importlib
        return importlib.import_module(f"explain.figures.{name}")
    raise AttributeError(f"module 'explain.figures' has no attribute {name!r}")
