"""The public API, the top of the engine: ``jt.tune`` / ``jt.resume`` (launch), ``TuningJob`` with ``view()``
and ``export()`` (job), and ``jt.sweep`` with its Optuna driver process (sweep, sweep_driver). It may import
every layer beneath it; nothing beneath imports it (widgets, export and models take a store-level JobHandle).
"""
