-- The MLflow tracking server's backend store lives beside Airflow's metadata DB, in its own database.
CREATE DATABASE mlflow;
-- MLflow's basic-auth app keeps its accounts and permissions in a database of its own (docker/mlflow_server.py also
-- creates it on a volume made before it existed).
CREATE DATABASE mlflow_auth;
