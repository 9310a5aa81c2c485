-- The MLflow tracking server's backend store lives beside Airflow's metadata DB, in its own database.
CREATE DATABASE mlflow;
