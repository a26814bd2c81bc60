"""The local AWS emulator's server: moto's, with what AWS does and moto (5.2.5) does not, where the toolkit relies on
it. Each fix is named here and in docs/local-emulator.md.

- A terminated instance's private address is free at once, as on AWS. moto frees it only when the instance object is
  garbage-collected, which a terminated instance (still listed) never is: a node replaced by scripts/roll.py could not
  take its fixed address back ("IP already in use").
- Each RDS instance has its own resource id (`DbiResourceId`), as on AWS. moto gives every instance the same one, so
  with a second instance in the account (a restore: scripts/restore.py, the rehearsal's restore drill) the AWS
  provider, which finds an instance by that id, finds two and waits for ever.
"""

from __future__ import annotations

import secrets
import string
import sys

from moto.ec2.models.instances import Instance
from moto.rds.models import DBInstance
from moto.server import main

_terminate = Instance.terminate


def _terminate_and_free_address(self: Instance):  # type: ignore[no-untyped-def]
    state = _terminate(self)
    if self.subnet_id:
        subnet = self.ec2_backend.get_subnet(self.subnet_id)
        for address in list(self._private_ips):
            subnet.del_subnet_ip(address)
    return state


Instance.terminate = _terminate_and_free_address  # type: ignore[method-assign]

_db_instance_init = DBInstance.__init__


def _db_instance_with_own_resource_id(self: DBInstance, *args, **kwargs):  # type: ignore[no-untyped-def]
    _db_instance_init(self, *args, **kwargs)
    self.dbi_resource_id = "db-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(26))


DBInstance.__init__ = _db_instance_with_own_resource_id  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
