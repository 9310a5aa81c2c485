"""Code only the demos use: the tiny local base model (``tiny_model``), the base model served on loopback as the
demo's judge (``base_server``), the judge demo's helpers (``judge``), the feedback loop's demo (``feedback``), the
grounded sample's demo (``retrieval``) and the Airflow runner they share (``pipeline``). Nothing in the pipeline or
the API imports this package; the CLI's demo commands and the tests do."""
