# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark aid: write each task's wall time to the JSON file named by BENCH_TASK_TIMES.

A task's time runs from the moment the strategy announces it (before its arguments are templated
and the module is sent) to the moment its result has been processed by the controller, so it holds
everything one module call costs and nothing of ansible-playbook's own start-up.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: bench_task_times
type: aggregate
short_description: write task wall times to a JSON file (benchmark aid)
description:
  - Records, per task, the seconds from task start to its last result, and writes them to the file
    named by the BENCH_TASK_TIMES environment variable when the playbook ends.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._started = {}
        self._times = []

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = (task.get_name(), time.perf_counter())

    def _finished(self, result):
        name, started = self._started[result._task._uuid]
        self._times.append({"task": name, "seconds": time.perf_counter() - started})

    v2_runner_on_ok = _finished
    v2_runner_on_failed = _finished
    v2_runner_on_skipped = _finished

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_TASK_TIMES")
        if path:
            with open(path, "w") as handle:
                json.dump(self._times, handle)
