"""What SageMaker instance types are made of, where AWS's rules depend on it.

Instance types with local NVMe instance storage refuse `VolumeKmsKeyId` ("You can't request a
VolumeKmsKeyId when using an instance type with local storage"); their storage is encrypted by the
hardware. Source: SageMaker API `ResourceConfig.VolumeKmsKeyId` / `TransformResources.VolumeKmsKeyId`,
and the EC2 list of instance store volumes.
"""
from __future__ import annotations

import re

# Every family botocore's SageMaker model lists for training and batch transform, classified (a test fails
# when a new one appears). With local NVMe instance storage: the "d" variants and these.
LOCAL_STORAGE = frozenset({
    "g4dn", "g5", "g6", "g6e", "g7e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "p6e-gb200",
    "r5d", "trn1", "trn1n", "trn2",
})
EBS_ONLY = frozenset({
    "c4", "c5", "c5n", "c6i", "c7i", "c7i-flex", "c8i", "c8i-flex", "g7", "inf2", "m4", "m5", "m6i", "m7i", "m7i-flex",
    "m8i", "m8i-flex", "p2", "p3", "r5", "r6i", "r7i", "r8i", "r8i-flex", "t3",
})
# A family neither list knows yet: its name says "d" (local disk) after the generation (m5d, c6id, g4dn).
_D_SUFFIX = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")


def family(instance_type: str) -> str:
    """ml.g5.xlarge -> g5; ml.p6-b200.48xlarge -> p6-b200."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "ml" else ""


def has_local_storage(instance_type: str) -> bool:
    name = family(instance_type)
    if name in LOCAL_STORAGE or name in EBS_ONLY:
        return name in LOCAL_STORAGE
    return bool(_D_SUFFIX.match(name.split("-")[0]))


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
