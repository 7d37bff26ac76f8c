"""What several stages of deepscope share; private (nothing here is public API).

- :mod:`explain._core.jsoncodec` — the strict-JSON codec: plain JSON values out of numpy/torch/
  enums/typed values, and the one convention for non-finite numbers (``null`` in place, the
  JSON pointer and value listed under ``"nonfinite_values"``). History, Finding, Quality, Report
  and the zoo's ``run.json`` all use it.
- :mod:`explain._core.io` — the one atomic writer (temp file in the same folder, fsync,
  ``os.replace``, directory fsync) and file hashing.
- :mod:`explain._core.tensors` — torch helpers: modality inference (one answer per input rank),
  device look-up, eval copies, batched predict, token decoding.
- :mod:`explain._core.guard` — :class:`ModelGuard`, which leaves a model exactly as it was found.
"""
