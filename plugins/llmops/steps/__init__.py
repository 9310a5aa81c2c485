"""The pipeline's steps, one plain function each: config in, a typed payload (:mod:`llmops.payloads`) out.

``ingest.ingest``, ``validate.validate``, ``snapshot.snapshot`` (the dataset DAG); ``finetune.run_finetune`` or
``preference_tune.run_preference_tune``, ``evaluate.evaluate``, ``gate.run_gate``, ``register.register`` (the
finetune DAG); with a sweep ``sweep.plan``, ``sweep.evaluate_references``, ``sweep.evaluate_trial``,
``sweep_gate.run_sweep_gate``, ``sweep_gate.register_winner`` in their place; ``feedback.build_preferences`` (the
feedback DAG); ``rollback.rollback``; ``export.export``; ``batch_predict.batch_predict``, ``monitor.monitor``,
``compare_prompts.compare_prompts`` (the serving DAGs, the champion loaded by ``champion.champion_model``);
``index``'s corpus, build, evaluate, gate, publish (the index DAG). Both gates end in ``gate.record_decision``.
Each imports and runs without Airflow; the operators in :mod:`llmops.operators` call one of these and nothing
else. A step that has nothing to do raises :class:`~llmops.errors.NothingToDo` (the task is skipped); a
:class:`~llmops.errors.PermanentError` fails the task without retry; anything else is left to Airflow's retries.
"""
