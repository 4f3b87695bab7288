"""The local runtime behind `make local`: the real synthesized template deployed into moto, the Lambda
code run in worker processes (one per warm "container"), and the API served over HTTP on 127.0.0.1.

Modules: moto_server (moto in this process), deploy (synth + create_stack), runtime (Lambda execution),
worker (the container side), gateway (HTTP → API Gateway proxy event), seed (demo data).
"""
