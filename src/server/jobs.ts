import type { ProgressEvent } from '../core/progress';
import type { TrainEvent } from '../core/train/train';
import { JOB_TITLES, type CvJobInfo, type JobKind, type JobProgressParams, type JobRef, type JobRequest } from '../protocol/protocol';

export interface Job extends JobRef {
  request: JobRequest;
  controller: AbortController;
  /** Training: the run it trains, once its job process has said (cross-validation: the fold's run). */
  runId?: string;
  /** Cross-validation: the experiment, once its job process has said. */
  cv?: CvJobInfo;
  /** Warnings already shown for this job (each fold's training would repeat the same one). */
  warned?: Set<string>;
}

/**
 * One job at a time, first in first out. `execute` runs a job to its end (it reports success or
 * failure itself); the queue only orders jobs and lets queued ones be dropped.
 */
export class JobQueue {
  private readonly waiting: Job[] = [];
  private current: Job | undefined;
  private nextId = 1;

  constructor(private readonly execute: (job: Job) => Promise<void>, private readonly changed: () => void) {}

  get running(): Job | undefined {
    return this.current;
  }

  get queued(): readonly Job[] {
    return this.waiting;
  }

  /** Adds a job; it starts on the next turn of the event loop, after the caller has answered. */
  add(request: JobRequest): { job: Job; position: number; behind?: Job } {
    const job: Job = { jobId: String(this.nextId++), kind: request.kind, title: JOB_TITLES[request.kind], request, controller: new AbortController() };
    // The job that runs before this one; a job added but not yet started counts as running.
    const behind = this.current ?? this.waiting[0];
    const position = this.waiting.length + (this.current ? 1 : 0);
    this.waiting.push(job);
    this.changed();
    setImmediate(() => this.pump());
    return { job, position, behind };
  }

  /** Drops a queued job; returns it, or undefined when it is not waiting. */
  drop(jobId: string): Job | undefined {
    const i = this.waiting.findIndex((j) => j.jobId === jobId);
    if (i < 0) return undefined;
    const [job] = this.waiting.splice(i, 1);
    job.controller.abort();
    this.changed();
    return job;
  }

  dropAll(): Job[] {
    const jobs = this.waiting.splice(0);
    for (const j of jobs) j.controller.abort();
    if (jobs.length) this.changed();
    return jobs;
  }

  /** Resolves when the running job (if any) has ended. */
  idle(): Promise<void> {
    return this.current ? this.currentDone ?? Promise.resolve() : Promise.resolve();
  }

  private currentDone: Promise<void> | undefined;

  private pump(): void {
    if (this.current || this.waiting.length === 0) return;
    const job = this.waiting.shift()!;
    this.current = job;
    this.changed();
    this.currentDone = this.execute(job).catch(() => { /* execute reports its own errors */ }).finally(() => {
      this.current = undefined;
      this.currentDone = undefined;
      this.changed();
      this.pump();
    });
  }
}

/** What the meter adds to a progress event: the job-level fields of a progress notification. */
export type MeterReading = { event: ProgressEvent } & Omit<JobProgressParams, keyof ProgressEvent | keyof JobRef>;

/**
 * The phase that stands for the whole job: its share done is the job's percentage. Other phases
 * (listing, building the patch cache, Grad-CAM) would make a shared bar jump back, and LSP wants
 * percentages that only rise, so they report their own share in the message only.
 */
const MAIN_PHASE: Record<JobKind, string> = {
  organize: 'organize.check', split: 'split', train: 'train.', resume: 'train.', evaluate: 'evaluate.predict',
  report: 'report', synth: 'synth', predict: 'predict.score', gradcam: 'gradcam',
  // Its share done comes from the folds (see onCvFold); no core phase stands for it.
  cv: 'cv',
};

/**
 * Turns a job's stream of core progress events into rate-limited readings with a whole-job
 * percentage that never goes back and an ETA. Training's ETA spans all remaining epochs,
 * measured over the batches trained so far in this session.
 */
export class JobMeter {
  private phase: string | undefined;
  private phaseStart = 0;
  private lastSent = 0;
  private percent = 0;
  private training: { runId: string; epochs: number; startEpoch: number; started?: number; epoch: number; batch: number; batches: number; loss?: number; imagesPerSecond?: number } | undefined;
  /** Cross-validation: the 0-based fold now, the fold count, and the experiment. */
  private cv: { fold: number; folds: number; info: CvJobInfo } | undefined;

  constructor(private readonly kind: JobKind, private readonly intervalMs = 200, private readonly now: () => number = () => Date.now()) {}

  /** A cross-validation moved to fold `fold` (0-based) of `folds`: the whole job's share counts folds. */
  onCvFold(fold: number, folds: number, info: CvJobInfo): void {
    if (this.cv?.fold !== fold) this.training = undefined;
    this.cv = { fold, folds, info };
    this.bump((100 * fold) / folds);
  }

  onTrainEvent(e: TrainEvent): void {
    if (e.type === 'start') this.training = { runId: e.runId, epochs: e.epochs, startEpoch: e.startEpoch, epoch: e.startEpoch, batch: 0, batches: 1 };
    else if (e.type === 'batch' && this.training) {
      this.training.started ??= this.now();
      Object.assign(this.training, { epoch: e.epoch, batch: e.batch, batches: e.batches, loss: e.loss, imagesPerSecond: e.imagesPerSecond });
    } else if (e.type === 'epoch' && this.training) Object.assign(this.training, { epoch: e.log.epoch + 1, batch: 0, loss: undefined, imagesPerSecond: undefined });
  }

  /** A reading to send, or undefined when throttled (phase changes and completions always pass). */
  onProgress(e: ProgressEvent): MeterReading | undefined {
    const t = this.now();
    const newPhase = e.phase !== this.phase;
    if (newPhase) { this.phase = e.phase; this.phaseStart = t; }
    const complete = e.total !== undefined && e.done >= e.total;
    if (!newPhase && !complete && t - this.lastSent < this.intervalMs) return undefined;
    this.lastSent = t;

    const reading: MeterReading = { event: e };
    const tr = this.training;
    if (tr && e.phase.startsWith('train.')) {
      const span = Math.max(1, tr.epochs - tr.startEpoch);
      // Precise BN and validation come after the epoch's steps.
      const inEpoch = e.phase === 'train.epoch' && e.total ? Math.min(1, e.done / e.total) : e.phase === 'train.validate' || e.phase === 'train.batchnorm' ? 1 : 0;
      const fraction = Math.min(1, (tr.epoch - tr.startEpoch + inEpoch) / span);
      const cv = this.cv;
      reading.percentage = this.bump(cv ? (100 * (cv.fold + fraction)) / cv.folds : 100 * fraction);
      reading.epoch = Math.min(tr.epoch + 1, tr.epochs);
      reading.epochs = tr.epochs;
      reading.runId = tr.runId;
      if (tr.batch > 0) Object.assign(reading, { step: tr.batch, steps: tr.batches, loss: tr.loss, imagesPerSecond: tr.imagesPerSecond });
      const unitsDone = (tr.epoch - tr.startEpoch) * tr.batches + tr.batch;
      // Later folds train as many epochs at most (early stopping may end them sooner).
      const unitsAll = span * tr.batches + (this.cv ? (this.cv.folds - this.cv.fold - 1) * tr.epochs * tr.batches : 0);
      if (tr.started !== undefined && unitsDone > 0 && t - tr.started > 1000) reading.etaSeconds = Math.round(((t - tr.started) / 1000 / unitsDone) * (unitsAll - unitsDone));
    } else if (e.total) {
      const fraction = Math.min(1, e.done / e.total);
      if (e.phase.startsWith(MAIN_PHASE[this.kind])) reading.percentage = this.bump(100 * fraction);
      const elapsed = (t - this.phaseStart) / 1000;
      if (e.done > 0 && elapsed > 1 && fraction < 1) reading.etaSeconds = Math.round((elapsed / e.done) * (e.total - e.done));
    }
    if (this.cv) Object.assign(reading, { fold: this.cv.fold + 1, folds: this.cv.folds, cv: this.cv.info });
    return reading;
  }

  private bump(p: number): number {
    this.percent = Math.max(this.percent, Math.floor(p));
    return this.percent;
  }
}
