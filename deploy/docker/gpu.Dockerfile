# DreamCluster GPU worker image: the CUDA driver shim, libtorch 2.7.1+cu128 from the PyTorch wheel (DJL 0.36's
# CUDA JNI is built against exactly that version), a JRE 17 and the distribution. Not built in CI: the wheel
# and the CUDA base image need the internet (about 6 GB). Build from the repository root after `mvn package`:
#
#   mvn -B -q package -DskipTests
#   podman build -f deploy/docker/gpu.Dockerfile -t dreamcluster-gpu .
#   podman run --gpus all dreamcluster-gpu worker --join COORD:2552 --device gpu:0
#
# The wheel brings its own CUDA 12.8 runtime, cuDNN, cuBLAS and NCCL (nvidia-*-cu12 wheels); the base only has
# to provide the container toolkit's driver mount, so the small "base" flavour is enough.
FROM docker.io/nvidia/cuda:12.8.1-base-ubuntu22.04

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# torch 2.7.1+cu128: torch/lib holds libtorch*.so; nvidia/nccl/lib holds libnccl.so.2 (NCCL through JavaCPP)
RUN pip3 install --no-cache-dir torch==2.7.1 --index-url https://download.pytorch.org/whl/cu128 \
 && python3 -c "import torch; assert torch.__version__ == '2.7.1+cu128', torch.__version__"

ENV TORCH_LIB=/usr/local/lib/python3.10/dist-packages/torch/lib \
    PYTORCH_LIBRARY_PATH=/usr/local/lib/python3.10/dist-packages/torch/lib \
    PYTORCH_VERSION=2.7.1 \
    PYTORCH_FLAVOR=cu128 \
    LD_LIBRARY_PATH=/usr/local/lib/python3.10/dist-packages/nvidia/nccl/lib:/usr/local/lib/python3.10/dist-packages/nvidia/cuda_runtime/lib

# the distribution exactly as bin/dreamcluster expects it (no sources in the image, so it never rebuilds);
# the default presets (cuda 12.9-9.10-1.5.12) link libcudart.so.12, which the wheel provides
COPY deploy/cli/target/dist/lib /opt/dreamcluster/deploy/cli/target/dist/lib
COPY bin/dreamcluster /opt/dreamcluster/bin/dreamcluster

# one worker per GPU: --device gpu:0 inside the container (map one GPU per container, or pass gpu:N)
ENTRYPOINT ["/opt/dreamcluster/bin/dreamcluster"]
CMD ["worker", "--help"]
