# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker daemon settings that leave the fleet firewall's DOCKER-USER chain untraversed."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.core.plugins.module_utils import _fleet

DOCUMENTATION = r"""
name: docker_user_bypass
short_description: The Docker daemon settings with which no packet passes through DOCKER-USER
version_added: 1.1.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - With C(iptables) set to false or C(firewall-backend) set to C(nftables) (and C(ip6tables) set to false for an IPv6
    address), dockerd never sends packets through its C(DOCKER-USER) chain, so rules there look in place and hold nothing.
  - The same check as the first play's refusal of such settings in C(docker_daemon_options) and
    C(docker_daemon_extra_options) (the C(fleet) filter's problems), for the settings a host really has.
options:
  _input:
    description: Docker daemon settings, as in C(/etc/docker/daemon.json).
    type: dict
    required: true
  address:
    description: The address Ollama is published on; an IPv6 one brings C(ip6tables) in.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Refuse settings that bypass DOCKER-USER
  ansible.builtin.fail:
    msg: "{{ daemon_settings | homelab.core.docker_user_bypass(homelab_private_address) | join(', ') }}"
  when: daemon_settings | homelab.core.docker_user_bypass(homelab_private_address) | length > 0
"""

RETURN = r"""
_value:
  description: 'Each offending setting as daemon.json spells it, for example C("iptables": false); empty when there is none.'
  type: list
  elements: str
"""


def docker_user_bypass(options, address=""):
    if not isinstance(options, dict):
        raise AnsibleFilterError("docker_user_bypass expects the daemon settings as a mapping, got %r" % (options,))
    return _fleet.docker_user_bypass(dict(options), address)


class FilterModule:
    def filters(self):
        return {"docker_user_bypass": docker_user_bypass}
