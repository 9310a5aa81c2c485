"""The pipeline's steps, one plain function each: config in, a typed payload (:mod:`llmops.payloads`) out.

``ingest.ingest``, ``validate.validate``, ``snapshot.snapshot`` (the dataset DAG); ``finetune.run_finetune``,
``evaluate.evaluate``, ``gate.run_gate``, ``register.register`` (the finetune DAG); ``rollback.rollback``;
``batch_predict.batch_predict``, ``monitor.monitor``, ``compare_prompts.compare_prompts`` (the serving DAGs).
Each imports and runs without Airflow; the operators in :mod:`llmops.operators` call one of these and nothing
else. A step that has nothing to do raises :class:`~llmops.errors.NothingToDo` (the task is skipped); a
:class:`~llmops.errors.PermanentError` fails the task without retry; anything else is left to Airflow's retries.
"""
