"""Fault injection in a rank (tests/faults only: this folder is put on ``PYTHONPATH`` by
``Fault.for_rank``). Python imports this module as it starts; only the rank the fault names
installs it, before its run begins."""

import json
import os

_spec = os.environ.get("REEDIT_TEST_FAULT")
if _spec and os.environ.get("RANK") == str(json.loads(_spec)["rank"]):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: faults.injector
    from faults.injector import Fault, install

    _value = json.loads(_spec)
    install(Fault(**_value["fault"]), Path(_value["run_dir"]))
