"""The APIs that graders and trainers already speak, for Python: Judge0, Piston, SandboxFusion and Jobe, each a thin
translation of its requests and answers over one Sandbox; no second runner, no second grader.

A server mounts them through `routes(service)`: {path pattern: {method: handler}}, each handler taking a Request and
answering (status, body, headers) in its own API's shape, errors included. web.py holds what they share.
"""
