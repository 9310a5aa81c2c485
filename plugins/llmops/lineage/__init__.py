"""OpenLineage for the pipeline: what each step read and wrote, named so a lineage tool joins the steps into one
graph from source files to the served model version.

``naming`` turns URIs, paths, queries and registry entries into (namespace, name) identifiers (no Airflow, no
OpenLineage import); ``steps`` builds one step's inputs and outputs from its typed payloads (plain data);
``facets`` turns that into the OpenLineage provider's ``OperatorLineage``.
"""
