"""Code that runs inside the sandbox container, not here: the supervisor and its parts, the session kernel, the plot
backend. The host never imports these modules; engine/shipping.py reads them as text and sends them in.

They run on the image's own Python (3.8 to 3.13), import nothing of safecode and nothing outside the standard
library (but the plot backend, which matplotlib loads), and are read by attackers: keep them small and plain.
"""
