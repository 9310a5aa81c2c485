"""Answer a waiting `approve` (human-in-the-loop) task through Airflow's public REST API, as the UI's Required
Actions page does, in-process against the metadata DB of ``AIRFLOW_HOME`` (the demo uses it when nobody answers):

    python include/scripts/answer_approval.py DAG_ID [Approve|Reject|--waiting]

Prints the run id answered (with --waiting: the run id waiting, answering nothing), or nothing when no `approve`
task is waiting. Needs
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True`` (the embedded default's auth manager, no login)."""

import sys

from airflow.api_fastapi.app import create_app
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from fastapi.testclient import TestClient


def waiting_run(dag_id: str) -> str | None:
    """The run whose `approve` task waits for an answer, if any."""
    with create_session() as s:
        ti = s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.task_id == "approve",
                                          TaskInstance.state == "awaiting_input").first()
        return ti.run_id if ti else None


def main(dag_id: str, choice: str = "Reject") -> int:
    run_id = waiting_run(dag_id)
    if choice == "--waiting":  # only say which run waits (empty: none)
        print(run_id or "")
        return 0
    if not run_id:
        return 0
    with TestClient(create_app("core")) as client:
        r = client.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
                         json={"chosen_options": [choice], "params_input": {}})
    print(run_id if r.status_code == 200 else f"error {r.status_code}: {r.text}")
    return 0 if r.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
