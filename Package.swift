// swift-tools-version:6.0
import Foundation
import PackageDescription

// Release builds use -O, not -Ounchecked: -Ounchecked removed every precondition (the shape checks
// in ops, the label and normalisation checks in Data) from the binary users and the integration
// tests run, and a bad input became heap corruption instead of a message (e.g. `eval` on a dataset
// with more classes than the checkpoint: `free(): invalid pointer`). It bought nothing measurable:
// -Ounchecked (Engine, NN, Data, Training, codistill) against -O everywhere, 23 alternating rounds
// of `bench engine` (bench/compare_binaries.py), the median of each round's -O/-Ounchecked ratio
// was cnn 0.99, mlp 1.04, resnet20 1.07 on a shared 2-core host whose per-round ratios spread
// 0.5-1.6 (docs/PERFORMANCE.md). The hot loops already run on unsafe pointers, which have no bounds
// checks under -O either. What stays: exclusivity checks off (the kernels' inout buffers), and
// AVX2/FMA: without a target CPU LLVM vectorises for SSE2 only and scalarises some SIMD operations.
// CODISTILL_TARGET_CPU overrides the CPU (e.g. "skylake-avx512", or "generic" for old hosts).
#if arch(x86_64)
let defaultCPU = "haswell"
#else
let defaultCPU = "generic"
#endif
let targetCPU = ProcessInfo.processInfo.environment["CODISTILL_TARGET_CPU"] ?? defaultCPU
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-O", "-enforce-exclusivity=unchecked"]
                 + (targetCPU == "generic" ? [] : ["-target-cpu", targetCPU]),
                 .when(configuration: .release)),
    // The tests build in debug mode; unoptimised kernels made the in-process training tests
    // 10x slower. -O keeps every precondition.
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "codistill",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "codistill", targets: ["codistill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Experiment files: TOML and YAML parsers (tables, quoting, types) instead of a hand-written one.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries, found through pkg-config; the shims expose the macros Swift cannot import.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"]), .yum(["openmpi-devel"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev", "hdf5-tools"]), .yum(["hdf5-devel"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .yum(["openblas-devel"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"]), .yum(["zlib-devel"])]),

        // Tensor engine: tensors, kernels, reverse-mode autodiff. Knows nothing of MPI or files.
        .target(name: "Engine", dependencies: ["CBLAS"], swiftSettings: fastMath),
        // Layers, models, losses, optimizers, schedules, the parameter store.
        .target(name: "NN", dependencies: ["Engine"], swiftSettings: fastMath),
        // The one HDF5 layer: open/create with the process-wide policy, atomic writes, typed
        // attributes and datasets. The only target that calls the HDF5 C API.
        .target(name: "HDF5", dependencies: ["CHDF5", "CZlib"]),
        // Datasets: IDX (gzip or raw), CIFAR binary, HDF5; shuffling, sharding, augmentation.
        .target(name: "Data", dependencies: ["Engine", "HDF5", "CZlib"], swiftSettings: fastMath),
        // HDF5 checkpoints of the parameter store, optimizer state and run metadata.
        .target(name: "Checkpoint", dependencies: ["Engine", "NN", "HDF5"]),
        // MPI: world, groups, collectives, clean abort.
        .target(name: "Cluster", dependencies: ["CMPI", "Engine"]),
        // The run configuration: TrainConfig, the option enums, settings by name, experiment
        // files (TOML/YAML). Stored in every checkpoint, so whatever rebuilds a model from one
        // needs it, not only the training loop.
        .target(name: "RunConfig", dependencies: [
            "NN", .product(name: "TOMLKit", package: "TOMLKit"), .product(name: "Yams", package: "Yams"),
        ]),
        // Models rebuilt from checkpoints with their input normalisation; predictions, evaluation
        // reports, churn. No MPI.
        .target(name: "Inference", dependencies: ["Engine", "NN", "Data", "Checkpoint", "RunConfig"],
                swiftSettings: fastMath),
        // The training loop (sync SGD in a group; codistillation across groups).
        .target(name: "Training", dependencies: [
            "Engine", "NN", "Data", "Checkpoint", "Cluster", "RunConfig",
        ], swiftSettings: fastMath),
        // Data-free distillation: images synthesised from a teacher (FastDFKD, DeepInversion) and a
        // student distilled on them. One process, no MPI.
        .target(name: "DataFree", dependencies: ["Engine", "NN", "Data", "Checkpoint", "RunConfig", "Inference"],
                swiftSettings: fastMath),
        // The command line.
        .executableTarget(
            name: "codistill",
            dependencies: [
                "Engine", "NN", "Data", "Checkpoint", "Cluster", "RunConfig", "Inference", "Training", "DataFree", "CMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastMath),

        .testTarget(name: "EngineTests", dependencies: ["Engine"], exclude: ["Golden"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Engine"], exclude: ["Golden"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Engine", "CHDF5"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "NN", "Engine", "CHDF5"]),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "CHDF5"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "RunConfig", "Inference", "DataFree"]),
        .testTarget(name: "DataFreeTests", dependencies: ["DataFree", "NN", "Engine"]),
        // Every reader of untrusted input on mutated files (a seeded mutator; docs/FUZZING.md).
        // Fixtures.swift is a link to DataTests' (test targets cannot depend on each other).
        .testTarget(name: "FuzzTests", dependencies: ["Data", "Checkpoint", "RunConfig", "NN", "Engine", "HDF5", "CHDF5"]),
        // Runs the release binary under mpirun (scripts/test.sh builds it first).
        .testTarget(name: "IntegrationTests", dependencies: ["Checkpoint"]),
    ],
    swiftLanguageModes: [.v5]
)
