"""One-line training integrations, each an optional extra; ``import explain`` never imports them.

* :mod:`explain.integrations.lightning` -- ``MonitorCallback``, a ``lightning.pytorch.Callback``
  (``pip install 'deepscope[lightning]'``);
* :mod:`explain.integrations.transformers` -- ``MonitorCallback``, a
  ``transformers.TrainerCallback`` (``pip install 'deepscope[transformers]'``).

Both run an :class:`explain.TrainingMonitor` from the framework's own hooks, log train/val loss
and accuracy per epoch, save ``deepscope-history.json`` and print the findings when training
ends; both expose ``.history`` and ``.findings()``.
"""

__all__: list[str] = []
