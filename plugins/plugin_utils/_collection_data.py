# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's own plain data, read on the controller once per run: role argument specs, catalogues."""

from __future__ import annotations

import functools
import glob
import os

import yaml

ROLES_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "roles"))


@functools.lru_cache(maxsize=None)
def _yaml_file(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def role_specs(roles_dir=ROLES_DIR):
    """Role name -> its parsed meta/argument_specs.yml."""
    return {
        os.path.basename(os.path.dirname(os.path.dirname(path))): _yaml_file(path)
        for path in sorted(glob.glob(os.path.join(roles_dir, "*", "meta", "argument_specs.yml")))
    }


def default_main_catalogue(roles_dir=ROLES_DIR):
    """The main stack's catalogue as the collection ships it (roles/main_stack/defaults/main.yml).

    Read for its plain values (ports), for a host whose inventory the main stack role's defaults do
    not reach: another host of the fleet, or a play that does not run the role.
    """
    return role_defaults("main_stack", roles_dir)["main_stack_catalogue"]


def role_defaults(role, roles_dir=ROLES_DIR):
    """The plain defaults of one of the collection's roles (its defaults/main.yml)."""
    return _yaml_file(os.path.join(roles_dir, role, "defaults", "main.yml"))
