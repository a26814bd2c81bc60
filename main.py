#!/usr/bin/env python3
"""CDKTF app: one stack per environments/<name>.toml, named after the file (`cdktf deploy local`).

Settings are validated first; any error is printed, naming the setting, and the app exits 2
before anything is synthesized, planned or created.
"""

import os
import sys
from pathlib import Path

from apim_active_active.settings import SettingsError, load_environments

ROOT = Path(__file__).resolve().parent
ENVIRONMENTS_DIR = Path(os.environ.get("APIM_ENVIRONMENTS_DIR", ROOT / "environments"))
STATE_DIR = Path(os.environ.get("APIM_STATE_DIR", ROOT / ".state")).resolve()


def main() -> int:
    try:
        environments = load_environments(ENVIRONMENTS_DIR)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from cdktf import App  # after validation: bad settings never start the jsii runtime

    from apim_active_active.stacks.active_active import ActiveActiveStack

    app = App()
    for name, settings in environments.items():
        ActiveActiveStack(app, name, settings, state_dir=STATE_DIR)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
