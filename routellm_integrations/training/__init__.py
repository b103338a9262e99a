"""Offline training of routers from preference data: one pipeline, one spec per trainer.

* :mod:`.pipeline` -- :func:`~.pipeline.train`: arguments checked -> pool -> embed -> fit
  -> validate -> card -> save, for every trainer.
* :mod:`.registry` -- :class:`~.registry.TrainerSpec` and :data:`~.registry.TRAINERS`
  (imported lazily: nothing here imports torch until a trainer fits).
* :mod:`.mf`, :mod:`.sw_ranking`, :mod:`.bert`, :mod:`.causal_llm` -- the trainers,
  each a config, a ``fit`` and ``TRAINER = TrainerSpec(...)``.
* :mod:`.pool` (training pool), :mod:`.embedding` (cached embedding),
  :mod:`.validation` (held-out validation, benchmarks), :mod:`.tiers` (model tiers),
  :mod:`.heads` (classifier heads on frozen features), :mod:`.card` (the model card).
"""
