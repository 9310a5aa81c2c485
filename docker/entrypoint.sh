#!/usr/bin/env bash
# Every Airflow container starts here: check the deployment's secrets, write the API login, then hand over to the
# official image's entrypoint (which waits for the database and runs the command).
set -euo pipefail
python /opt/llmops/docker/check_deployment_env.py \
  --write-passwords "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-/opt/airflow/simple_auth_manager_passwords.json}"
exec /entrypoint "$@"
