"""What people use: Sandbox, execute and stream (sandbox, stream), sessions, the asyncio face (aio), the command
line (cli) and its doctor. Each is a consumer of the reader's events."""
