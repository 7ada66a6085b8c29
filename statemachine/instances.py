"""What SageMaker instance types are made of, where AWS's rules depend on it.

Instance types with local NVMe instance storage refuse `VolumeKmsKeyId` ("You can't request a
VolumeKmsKeyId when using an instance type with local storage"); their storage is encrypted by the
hardware. Source: SageMaker API `ResourceConfig.VolumeKmsKeyId` / `TransformResources.VolumeKmsKeyId`,
and the EC2 list of instance store volumes.
"""
from __future__ import annotations

import re

# Families whose name says "d" (local disk) after the generation: m5d, c5d, r5d, m5ad, m6id, c6id,
# r6id, c6gd, m6gd, r6gd, g4dn, p3dn, p4d, p4de, z1d...
_D_SUFFIX = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")
# Families with instance storage that do not say so in their name.
_STORAGE_WITHOUT_D = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "p6", "trn1", "trn1n", "trn2"})


def family(instance_type: str) -> str:
    """ml.g5.xlarge -> g5."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "ml" else ""


def has_local_storage(instance_type: str) -> bool:
    name = family(instance_type)
    return bool(_D_SUFFIX.match(name)) or name in _STORAGE_WITHOUT_D
