"""The host names of a local multi-instance job, resolved as SageMaker's network resolves them.

On SageMaker each instance resolves algo-1 … algo-N. Locally the engine passes SAGESTEP_HOSTS
({"algo-1": "127.x.y.1", …}) and this module answers those names, without /etc/hosts: Python imports
it at start-up in every process of the job (the launcher, pip, the user's script), because the shim
folder is on PYTHONPATH. Any other name goes to the system's resolver.
"""
import json
import os
import socket

_HOSTS = json.loads(os.environ.get("SAGESTEP_HOSTS", "{}"))

if _HOSTS:
    _getaddrinfo, _gethostbyname, _gethostbyname_ex = socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex

    def _getaddrinfo_mapped(host, *args, **kwargs):
        return _getaddrinfo(_HOSTS.get(host, host), *args, **kwargs)

    def _gethostbyname_mapped(host):
        return _HOSTS[host] if host in _HOSTS else _gethostbyname(host)

    def _gethostbyname_ex_mapped(host):
        return (host, [], [_HOSTS[host]]) if host in _HOSTS else _gethostbyname_ex(host)

    socket.getaddrinfo = _getaddrinfo_mapped
    socket.gethostbyname = _gethostbyname_mapped
    socket.gethostbyname_ex = _gethostbyname_ex_mapped
