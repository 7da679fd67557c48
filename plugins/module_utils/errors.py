# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type of the library: every expected failure raises it with a message that
names the problem, so modules can hand it to the user unchanged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class MtlsError(Exception):
    """An expected failure (bad input, wrong passphrase, policy violation...).

    ``details`` carries structured, non-secret context for module return values.
    """

    def __init__(self, message, **details):
        super(MtlsError, self).__init__(message)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message
