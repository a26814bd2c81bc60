"""Pure renderers: settings in, file text out. No cdktf import (a test guards this)."""
