"""`spark-submit jobs/submit.py <lakehouse CLI arguments>`: the CLI as a Spark application.

The cluster profile's Airflow tasks (SparkSubmitOperator) and `make cluster-check` submit
this file; the arguments are those of `lakehouse` (e.g. `run --date 2026-03-05`).
"""

import os
import sys

# Python puts this file's folder first on sys.path; its modules (config.py, spark.py, …)
# are `jobs.*`, not top-level modules, so the folder must not shadow anything.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from jobs.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
