"""CDKTF toolkit for WSO2 API Manager active-active (all-in-one) on AWS.

Data flows one way: settings -> renderers (pure) -> constructs -> stacks -> main.py.
Only `constructs/`, `stacks/` and `aws.py` import cdktf.
"""
