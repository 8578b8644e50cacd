"""The sweep driver: turns a study spec into trials (``studies``), runs them with Ray Tune
(``runner``, ``trainable``) and writes tidy results (``results``). It calls into
``sweep.engine``; the engine never calls back."""
