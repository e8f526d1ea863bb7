"""Constants people edit. Every script's command-line flags override these, and
``--help`` shows the values below as defaults. ``common.cli.validate_config`` refuses
invalid values (naming the constant) before any work starts.
"""

# --- Paths -------------------------------------------------------------------------
DATA_DIR = "data"  # where MedNIST/ is downloaded or extracted
RESULTS_DIR = "comprehensive_gpu_cpu_analysis_results"  # root of the results tree
VOLUME_PATH = None  # a NIfTI volume to analyse (None: the MNI152 T1 template shipped by nilearn)
LABEL_PATH = None  # optional NIfTI label map matching VOLUME_PATH (integer classes)

# --- MedNIST source (as MONAI's MedNISTDataset) -----------------------------------
MEDNIST_URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/MedNIST.tar.gz"
MEDNIST_MD5 = "0bc7306e7427e00ad1c5526a6677552d"  # md5 of the official archive
# a real MedNIST subset shipped in the repository (60 images per class), used where no download is possible
EMBEDDED_MEDNIST_ARCHIVE = "embedded/MedNIST-subset.tar.gz"
EMBEDDED_MEDNIST_MD5 = "3322b39c362a01440fbc0188eda39b65"  # md5 of that archive
DOWNLOAD_TIMEOUT_S = 30.0  # socket timeout of the download, seconds
SYNTHETIC_PER_CLASS = 200  # images per class for --synthetic when no count is given

# --- Split (MONAI MedNIST tutorial: 80/10/10) -------------------------------------
VAL_FRACTION = 0.1  # share of each class kept for validation
TEST_FRACTION = 0.1  # share of each class kept for the test set
SEED = 0  # seed of the split, the model initialisation and the augmentation

# --- Training (MONAI MedNIST tutorial recipe, with a usable learning rate) --------
BATCH_SIZE = 300  # images per training step (the tutorial's 300)
LEARNING_RATE = 1e-3  # Adam learning rate at BATCH_SIZE, scaled by sqrt(batch / BATCH_SIZE) for other batches
# (every ladder rung but the recipe, which trains as the MONAI tutorial does: Adam at 1e-5, constant)
EPOCHS = 10  # epoch budget of a training run to the target (default mode): a ladder rung stops at the target
# validation accuracy or after this many epochs, and its learning-rate schedule spans this many
TARGET_VAL_ACCURACY = 0.99  # validation accuracy that counts as "trained" (time to target)
NUM_WORKERS = None  # DataLoader workers for the tutorial recipe (None: min(10, logical cores - 1))
CPU_THREADS = None  # torch intra-op threads (None: all physical cores)

# --- Measurement --------------------------------------------------------------------
SAMPLE_HZ = 10.0  # sampler rate (GPU via NVML, CPU via psutil), 1 to 100 Hz
WARMUP_STEPS = 3  # steps run and recorded apart before every measured window
MEASURE_STEPS = 20  # measured steps per configuration (default mode)
REPEATS = 5  # repeats of each timed window (median, IQR, bootstrap interval over them)
UNSTABLE_IQR_FRACTION = 0.10  # flag a measurement whose IQR exceeds this share of its median
BOOTSTRAP_RESAMPLES = 2000  # resamples for the 95% bootstrap intervals

# --- Sweeps ---------------------------------------------------------------------------
BATCH_SIZES = (32, 64, 128, 256, 512, 1024, 2048)  # batch-size sweep (capped by device memory)
INFERENCE_REPEATS = 200  # batch-1 inference calls timed for the latency percentiles

# --- 3D volume pipeline ----------------------------------------------------------
VOLUME_SPACING_MM = 1.5  # resample the volume to this isotropic spacing before analysis
PATCH_SIZE = 64  # edge of the cubic training and sliding-window patch (voxels)
UNET_CHANNELS = (16, 32, 64, 128)  # 3D UNet feature channels per level
VOLUME_TRAIN_STEPS = 150  # 3D UNet training steps on the volume's tissue maps (default mode)

# --- Quick mode (--quick): the whole script in minutes ---------------------------
QUICK_MEASURE_STEPS = 2  # measured steps per window
QUICK_REPEATS = 3  # repeats of each timed window
QUICK_EPOCHS = 2  # epochs of accuracy-gated training
QUICK_MAX_TRAIN_IMAGES = 1200  # cap on training images (stratified) in quick mode
QUICK_BATCH_SIZES = (16, 64, 256)  # batch-size sweep in quick mode
QUICK_VOLUME_SPACING_MM = 3.0  # coarser volume in quick mode
QUICK_VOLUME_TRAIN_STEPS = 15  # 3D UNet steps in quick mode
QUICK_INFERENCE_REPEATS = 30  # batch-1 inference calls in quick mode

# --- Default mode on the CPU: the GPU-sized run would take hours on a few cores -----
CPU_BATCH_SIZES = (16, 32, 64, 128, 256)  # batch-size sweep of the default CPU run
CPU_MEASURE_STEPS = 5  # measured steps per window in the default CPU run
CPU_MAX_TRAIN_IMAGES = 2400  # training images (stratified) of the default CPU run's accuracy-gated training
CPU_EPOCHS = 3  # epochs of the default CPU run's accuracy-gated training

# --- Cost (optional; nothing is invented when None) -------------------------------
GPU_PRICE_PER_HOUR = None  # price of the GPU machine per hour (any currency), for cost per million images
CPU_PRICE_PER_HOUR = None  # price of the CPU machine per hour, same currency

QUICK_CUDNN_BENCHMARK = False  # cuDNN autotuning in --quick runs (each new shape costs seconds to tune)
QUICK_MAX_EVAL_IMAGES = 300  # cap on validation and test images (stratified) in quick mode

# --- Quick mode on the CPU: sizes a 2-core machine gets through in minutes -------
QUICK_CPU_BATCH_SIZE = 32  # replaces BATCH_SIZE in --quick runs on the CPU (recorded in every record)
QUICK_CPU_BATCH_SIZES = (8, 16, 32)  # batch-size sweep in --quick runs on the CPU
QUICK_CPU_MAX_TRAIN_IMAGES = 480  # training images in --quick runs on the CPU
QUICK_CPU_EPOCHS = 1  # epochs of accuracy-gated training in --quick runs on the CPU
QUICK_PATCH_SIZE = 32  # 3D patch edge in quick mode
# the GPU ladder also runs inductor's tuning rungs (programmatic dependent launch, coordinate-descent
# tuning) after the fused-blocks rung: each compiles the whole step again, minutes apiece
LADDER_INDUCTOR_TUNING = False
ACCURACY_TOLERANCE = 0.005  # a ladder rung passes the gate if its test accuracy on every seed is at least the recipe's
# lowest test accuracy over its seeds minus this (and it reached TARGET_VAL_ACCURACY on every seed)
# optional energy bound on the winner: among the rungs that pass the gate, only those at most this many joules per
# image on the GPU board's counter may win (None: off; the winner is the shortest cold time to target)
WINNER_MAX_J_PER_IMAGE = None

# --- Time to target (the winning-solution ladder) -------------------------------------
LADDER_SEEDS = (0, 1, 2)  # seeds of initialisation and augmentation per rung (the split stays fixed by SEED)
QUICK_LADDER_SEEDS = (0,)  # seeds per rung in --quick runs (one seed: the record says the seed gate is not met)
ENERGY_WINDOW_S = 30.0  # J/image of a rung is measured over this many seconds of sustained training
QUICK_ENERGY_WINDOW_S = 2.0  # the same in --quick runs
LADDER_COMPILED_RUNGS = True  # the GPU ladder also runs the torch.compile throughput leader (minutes of cold
# compilation; one seed, so it is reported but cannot win)
CACHE_DIR = "cache"  # persistent caches a second run reuses (decoded MedNIST, inductor/Triton); warm runs use it

# --- Section sizes (default mode / --quick) ------------------------------------------------
AUGMENTATION_IMAGES = 256  # images the per-sample MONAI chain is timed on (augmentation_analysis)
QUICK_AUGMENTATION_IMAGES = 48  # the same in --quick runs
AUGMENTATION_QUALITY_IMAGES = 64  # images compared against MONAI's output (SSIM, PSNR, max difference)
QUICK_AUGMENTATION_QUALITY_IMAGES = 16  # the same in --quick runs
INFERENCE_THROUGHPUT_ITERS = 10  # forward calls per timed window of the inference batch sweep
QUICK_INFERENCE_THROUGHPUT_ITERS = 3  # the same in --quick runs
QUICK_WARMUP_STEPS = 1  # warm-up steps before every measured window in --quick runs
VOLUME_BATCH_SIZE = 4  # 3D UNet training patches per step
QUICK_VOLUME_BATCH_SIZE = 2  # the same in --quick runs
VOLUME_AUGMENTATION_PATCHES = 8  # patches the 3D augmentation chain is timed on
QUICK_VOLUME_AUGMENTATION_PATCHES = 4  # the same in --quick runs
RENDER_AZIMUTHS_DEG = (0.0, 45.0, 90.0, 180.0)  # views of the 3D rendering (degrees about the vertical axis)
QUICK_RENDER_AZIMUTHS_DEG = (0.0, 90.0)  # the same in --quick runs
RENDER_SIZE = 160  # edge of each rendered view (pixels)
QUICK_RENDER_SIZE = 96  # the same in --quick runs

# --- Inference ladder (performance_analysis): serving at batch 1 and under a latency budget ----------
LATENCY_BUDGET_MS = 50.0  # serving budget: the best throughput counts batch sizes whose p99 call latency is within it
INFERENCE_MIN_AGREEMENT = 0.999  # top-1 agreement with eager fp32 on the test split a rung needs to win
INFERENCE_LATENCY_CALLS = 1000  # timed batch-1 calls per rung (1000 leave 10 calls above the p99)
QUICK_INFERENCE_LATENCY_CALLS = 200  # the same in --quick runs
INFERENCE_BATCH_SIZES = (1, 8, 32, 128, 512, 2048)  # the throughput-latency curve of every rung (GPU)
CPU_INFERENCE_BATCH_SIZES = (1, 4, 16, 64)  # the curve in the default CPU run
QUICK_INFERENCE_BATCH_SIZES = (1, 16, 256)  # the curve in --quick runs (GPU)
QUICK_CPU_INFERENCE_BATCH_SIZES = (1, 8)  # the curve in --quick runs on the CPU
INFERENCE_CURVE_SECONDS = 1.0  # timed seconds per point of the curve (at least 5 calls); --quick: a quarter
INFERENCE_TRAIN_STEPS = 100  # training steps (batch 64) of the served model before the ladder; --quick: a quarter
INFERENCE_MAX_AUTOTUNE = False  # GPU: add a torch.compile max-autotune-no-cudagraphs rung (autotunes for minutes)
INFERENCE_COMPILE = True  # the torch.compile rungs (each batch size compiles anew: minutes on a few CPU cores)

# --- Scaling: data-parallel training (torchrun + DistributedDataParallel; NCCL on GPUs, gloo on CPUs) ---------
# GPUs per machine of the scaling section (--gpus; None: every visible GPU); measured at 1, 2, 4, ...
SCALING_GPUS = None
SCALING_BATCH_PER_GPU = 512  # per-GPU batch: weak scaling keeps it (the global batch grows), strong scaling splits it
SCALING_CPU_PROCS = (1, 2)  # gloo process counts of the CPU scaling section (threads per process: threads / processes)
SCALING_CPU_BATCH_PER_PROC = 32  # per-process batch of the CPU scaling section (at most BATCH_SIZE of the run)
SCALING_TIMEOUT_S = 900.0  # a torchrun launch still running after this many seconds is stopped (no record written)
SCALING_GRAPH = "cuda_graph"  # GPU step: "cuda_graph" (each rank replays its whole step, all-reduce included) or "none"
SCALING_CUDNN_BENCHMARK = False  # cuDNN autotuning in the scaling runs (off, as the single-GPU winner: seconds a shape)
NNODES = 1  # machines taking part in the scaling section (--nnodes; torchrun's rendezvous flags below)
NODE_RANK = 0  # this machine's rank among NNODES (--node-rank; 0 writes the record)
MASTER_ADDR = None  # address of the node-rank-0 machine when NNODES > 1 (--master-addr)
MASTER_PORT = 29500  # its rendezvous port (--master-port)
