import Foundation
import Imaging
import Kernels
import ViT

/// A section of the training configuration: every field has a default, so a
/// YAML file names only what it changes.
public protocol ConfigSection: Codable, Equatable {
  init()
}

/// A string-valued option with a fixed set of spellings.
public protocol ConfigChoice: Codable, CaseIterable, RawRepresentable where RawValue == String {}

/// The full configuration of a training run. YAML keys are the snake_case forms
/// of the field names (`model.mlp_ratio`, `optim.warmup_epochs`, ...).
/// Load with `TrainConfig.load(path:overrides:)` (Config+Loading.swift).
public struct TrainConfig: Codable, Equatable {
  public var model = ModelConfig()
  public var data = DataConfig()
  public var train = TrainLoopConfig()
  public var optim = OptimConfig()
  public var checkpoint = CheckpointConfig()
  public var loss = LossConfig()
  public var eval = EvalConfig()

  public init() {}
}

/// The model section is ViT's `ModelConfig`, read and written like the other sections.
extension ModelConfig: ConfigSection {}

/// How records are drawn from the training shards.
public enum SamplingMode: String, ConfigChoice {
  /// One permutation of all records per epoch (function of seed and epoch only).
  case global
  /// Shards are dealt to ranks, records permuted within them (less I/O, order depends on N).
  case shardLocal = "shard-local"
}

public struct DataConfig: ConfigSection {
  /// Training shards: WebDataset tar files or glob patterns (`data/d3-*.tar`).
  public var train: [String] = []
  /// Side of the local views r_l, f_l (96; 224 in the authors' code). Multiple of model.patch.
  public var localSize = 96
  /// Decoding / augmentation threads per rank (0: as many as the rank's cores).
  public var loaderThreads = 0
  /// Batches prepared ahead of the step that needs them.
  public var prefetch = 2
  /// Record order: `global` or `shard-local`.
  public var sampling = SamplingMode.global
  /// Upper bound n of the number of operations T applies (n drawn from 0...num_transform).
  public var numTransform = 2
  /// Test folder (real/, gen_0/ ... gen_3/) for evaluation after training, if any.
  public var test: String? = nil
  /// Largest image (width x height) decoded, read from the header before decoding; a
  /// larger one is a bad record (Pillow's MAX_IMAGE_PIXELS, 89,478,485, by default).
  public var maxImagePixels = DecodePolicy.pillowMaxPixels

  public init() {}
}

public struct TrainLoopConfig: ConfigSection {
  /// Records per step over all ranks, G (must be a multiple of the number of ranks).
  public var globalBatch = 1024
  /// Length of the run in optimiser steps (set this or `epochs`).
  public var steps: Int? = nil
  /// Length of the run in epochs (set this or `steps`); steps = round(epochs * steps_per_epoch).
  public var epochs: Double? = nil
  /// Steps per epoch; when unset, floor(records in data.train / global_batch).
  public var stepsPerEpoch: Int? = nil
  /// Seed of initialisation, sample order and augmentation.
  public var seed = 42
  /// Steps between log lines / metrics records.
  public var logEvery = 10
  /// Steps between checks that all replicas hold identical parameters (0: never).
  public var consistencyCheckEvery = 100
  /// Probe evaluations (`eval.every_steps`) without an improvement of `eval.best_metric`
  /// after which training stops (0: never).
  public var earlyStopPatience = 0
  /// Stall watchdog: seconds within which a step must complete on every rank, else the
  /// job ends with one line naming the step and the ranks that did not arrive.
  /// Unset: the larger of 300 s and 10 x the median step time; 0: off.
  public var stallTimeoutS: Double? = nil

  public init() {}
}

public struct OptimConfig: ConfigSection {
  /// Peak learning rate (after warmup), AdamW.
  public var lr = 0.002
  /// AdamW (beta1, beta2).
  public var betas = [0.9, 0.999]
  /// AdamW epsilon.
  public var eps = 1e-8
  /// Decoupled weight decay, applied to weight matrices only.
  public var weightDecay = 2e-5
  /// Linear warmup length in steps (set this or `warmup_epochs`; neither: no warmup).
  public var warmupSteps: Int? = nil
  /// Linear warmup length in epochs.
  public var warmupEpochs: Double? = nil
  /// Learning rate at step 0 of the warmup.
  public var warmupLrInit = 1e-6
  /// Learning rate at the end of the cosine decay.
  public var minLr = 0.0
  /// Records per forward/backward chunk for gradient caching (0: the whole local batch at once).
  public var gradCacheChunk = 0
  /// Run an augmented view that T left unchanged (bit-identical to its base view) through
  /// the network once (`CoDEStep.deduplicateViews`). Same gradients up to summation order;
  /// false keeps every rank's work per step equal.
  public var deduplicateViews = true
  /// The step's GEMMs (the Linear layers' and attention's): `fp32`, or `bf16` (mixed
  /// precision: bf16 operands, fp32 sums, fp32 master weights and AdamW; `GEMMPrecision`). `bf16` needs a CPU with
  /// `avx512_bf16` or `amx_bf16`; elsewhere the run is refused at start.
  public var precision = GEMMPrecision.fp32

  public init() {}
}

extension GEMMPrecision: ConfigChoice {}

public struct CheckpointConfig: ConfigSection {
  /// Steps between checkpoints (0: only at the end and on a stop signal).
  public var everySteps = 1000
  /// Checkpoints kept (the newest `keep`).
  public var keep = 3

  public init() {}
}

public struct LossConfig: ConfigSection {
  /// InfoNCE temperature t.
  public var temperature = 0.1

  public init() {}
}

/// How an evaluation image becomes the model's input (the spellings of `cde embed --preprocess`).
public enum EvalPreprocess: String, ConfigChoice {
  /// The training base view: shorter side to floor(S / 0.9), bicubic, centre crop S.
  case resizeCrop = "resize-crop"
  /// The authors' inference: centre crop S at native resolution (padded when smaller).
  case centerCrop = "center-crop"
}

/// Probe evaluation during training, as the authors' trainer does every epoch: the
/// classifiers are fitted on the embeddings of `probe` and scored on `test`, per
/// generator; the best model is kept in RUN/checkpoints/best and
/// `train.early_stop_patience` stops on `best_metric`.
public struct EvalConfig: ConfigSection {
  /// Labelled images to fit the classifiers on: shards, shard globs or test-layout
  /// folders (`real/`, `gen_0/` ... `gen_3/`), read as `cde embed` reads them.
  public var probe: [String] = []
  /// Labelled images to score the classifiers on (same forms as `probe`).
  public var test: [String] = []
  /// Steps between evaluations (0: no evaluation); the last step is evaluated too.
  public var everySteps = 0
  /// Classifiers fitted: any of linear, knn, svm.
  public var classifiers = ["linear", "knn"]
  /// `resize-crop` (the training base view) or `center-crop` (the authors' inference).
  public var preprocess = EvalPreprocess.resizeCrop
  /// Most probe images used (0: all); a class-balanced subset, each class's first images.
  public var maxProbeImages = 0
  /// Most test images used (0: all), chosen as for `max_probe_images`.
  public var maxTestImages = 0
  /// The metric that selects the best model and drives early stopping (higher is
  /// better): CLASSIFIER.SUBSET.METRIC with SUBSET gen_k, all, or mean (the mean over
  /// the generators) and METRIC acc, real_acc, fake_acc or auc.
  public var bestMetric = "linear.mean.acc"

  public init() {}
}

/// The run length and warmup in steps, once steps per epoch is known.
public struct ResolvedSchedule: Equatable, Sendable {
  public var stepsPerEpoch: Int
  public var totalSteps: Int
  public var warmupSteps: Int
}

extension TrainConfig {
  /// Steps per epoch, total steps and warmup steps.
  /// stepsPerEpoch = train.steps_per_epoch ?? max(1, floor(records / global_batch));
  /// totalSteps = train.steps ?? round(epochs * stepsPerEpoch);
  /// warmupSteps = optim.warmup_steps ?? round(warmup_epochs * stepsPerEpoch) ?? 0.
  public func schedule(records: Int) -> ResolvedSchedule {
    let spe = train.stepsPerEpoch ?? max(1, records / train.globalBatch)
    let total = train.steps ?? Int(((train.epochs ?? 0) * Double(spe)).rounded())
    let warm = optim.warmupSteps ?? Int(((optim.warmupEpochs ?? 0) * Double(spe)).rounded())
    return ResolvedSchedule(stepsPerEpoch: spe, totalSteps: total, warmupSteps: warm)
  }
}
