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


def with_volume_key(resources: dict, kms_key_arn: str | None) -> dict:
    """ResourceConfig / TransformResources, with the stack's key on the volume where SageMaker takes one."""
    if kms_key_arn and not has_local_storage(resources["InstanceType"]):
        return {**resources, "VolumeKmsKeyId": kms_key_arn}
    return resources


def summary(kind: str, resources: dict, output_encrypted: bool) -> list[str]:
    """The synth summary's lines for a job: its instances, and why a volume key is left out."""
    lines = [f"{kind}: {resources['InstanceCount']} x {resources['InstanceType']}"]
    if output_encrypted and has_local_storage(resources["InstanceType"]):
        lines.append(f"  VolumeKmsKeyId omitted: {resources['InstanceType']} has local instance storage, which the "
                     "hardware encrypts, and SageMaker refuses a volume key for it; outputs are still encrypted "
                     "with kmsKeyArn")
    return lines
