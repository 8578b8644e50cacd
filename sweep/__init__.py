"""vitstab: stability studies of ViT training.

Two layers. The engine trains one trial and needs no Ray: ``sweep.models`` (the ViT and
its complexity), ``sweep.data`` (datasets), ``sweep.engine`` (configs, tuned values,
recipe, augmentation, checkpoints, the training loop). The driver, ``sweep.driver``,
samples studies and runs their trials on a Ray cluster. Command lines: ``sweep.train``
(one trial), ``sweep.run`` (a sweep), ``sweep.complexity`` (the model table).
"""
