/**
 * Every message between a webview panel and the extension host, declared once.
 *
 * A panel talks to its host by typed requests (webview -> host, answered) and events
 * (host -> webview). Requests come from an untrusted page, so each one's parameters are a zod
 * schema that the host checks before any handler runs; results and events are plain types. No
 * `vscode` import here and only type imports from src/core: the webview bundles import this file.
 */
import { z } from 'zod';

// No compiled validators: they probe `navigator` (an error in VS Code's extension host) and eval
// (refused by the webviews' CSP).
z.config({ jitless: true });
import type { DatasetView, DatasetPatient, PatientStain, SlideMapView, TrainingView, TrainingEpoch, ThresholdView, GalleryPage, RunSummary, CvListItem, CvTrainingView, CvFoldView } from '../core/views/types';

export type { DatasetView, DatasetPatient, PatientStain, SlideMapView, TrainingView, TrainingEpoch, ThresholdView, GalleryPage, RunSummary, CvListItem, CvTrainingView, CvFoldView };
/** Parts of the threshold explorer's view (metrics.json's intervals by patient and calibration), named for the page. */
export type { PatientIntervals, OperatingPointInterval, CalibrationReport } from '../core/evaluate/types';
export type { ReliabilityBin } from '../core/metrics/calibration';

// ------------------------------------------------------------------------------------- envelope

export const PANEL_KINDS = ['dataset', 'training', 'threshold', 'gallery', 'slidemap'] as const;
export type PanelKind = (typeof PANEL_KINDS)[number];

/** VS Code view types, which name the panel in its serializer and activation event. */
export const VIEW_TYPES: Record<PanelKind, string> = {
  dataset: 'idc.dataset',
  training: 'idc.training',
  threshold: 'idc.threshold',
  gallery: 'idc.gallery',
  slidemap: 'idc.slidemap',
};

export const PANEL_TITLES: Record<PanelKind, string> = {
  dataset: 'IDC: Dataset',
  training: 'IDC: Training',
  threshold: 'IDC: Threshold Explorer',
  gallery: 'IDC: Error Gallery',
  slidemap: 'IDC: Slide Map',
};

/** What a panel shows, kept by the webview (vscode.setState) and handed back on revive. */
export const panelState = z.object({
  /** Workspace folder the panel reads from. */
  folder: z.string().min(1),
  /** Run id (training, threshold, gallery, slide map) or evaluation id `<model>/<split>`. */
  runId: z.string().optional(),
  evaluation: z.string().optional(),
  /** Panel-specific UI state (selected tab, threshold, patient, zoom …), small JSON. */
  ui: z.record(z.string(), z.unknown()).optional(),
});
export type PanelState = z.infer<typeof panelState>;

/** webview -> host */
export interface RequestMessage { kind: 'request'; id: number; method: string; params: unknown }
/** host -> webview */
export interface ResponseMessage { kind: 'response'; id: number; result?: unknown; error?: string }
export interface EventMessage { kind: 'event'; name: string; data: unknown }
export type HostMessage = ResponseMessage | EventMessage;

export const requestMessage = z.object({ kind: z.literal('request'), id: z.number().int().nonnegative(), method: z.string().max(64), params: z.unknown() });

/** One request: its parameter schema (checked on receipt) and its result type (phantom). */
export interface RequestSpec<P extends z.ZodType, R> { params: P; result?: R }
/** Curried so that the schema's type is inferred while the result type is named: request<R>()(schema). */
function request<R>() {
  return <P extends z.ZodType>(params: P): RequestSpec<P, R> => ({ params });
}
export type RequestMap = Record<string, RequestSpec<z.ZodType, unknown>>;
export type ParamsOf<S> = S extends RequestSpec<infer P, unknown> ? z.infer<P> : never;
export type ResultOf<S> = S extends RequestSpec<z.ZodType, infer R> ? R : never;
/** What a host implements for a panel: one handler per request, typed by the map. */
export type Handlers<M extends RequestMap> = { [K in keyof M]: (params: ParamsOf<M[K]>) => Promise<ResultOf<M[K]>> | ResultOf<M[K]> };

const id = z.string().min(1).max(256);
const threshold = z.number().min(0).max(1);

// ------------------------------------------------------------------------------------- common

/** Requests every panel understands. */
export const commonRequests = {
  /** First message of a page: who am I, what do I show. */
  ready: request<{ state: PanelState; theme: 'light' | 'dark' | 'high-contrast' | 'high-contrast-light' }>()(z.object({})),
  /** The webview saved its UI state; the host keeps the folder/run part authoritative. */
  saveState: request<void>()(panelState),
  /** Turns file paths (patches, overlays, slide maps) into webview URIs; paths outside the dataset and output folders are refused. */
  resolveImages: request<(string | null)[]>()(z.object({ paths: z.array(z.string().max(4096)).max(500) })),
  /** Runs a palette command (only IDC ones) from a button in the page. */
  runCommand: request<void>()(
    z.object({ command: z.string().regex(/^idc\.[A-Za-z]+$/), args: z.array(z.unknown()).max(4).optional() })),
  /** Opens another IDC panel, e.g. the gallery filtered on one confusion-matrix cell. */
  openPanel: request<void>()(
    z.object({ panel: z.enum(PANEL_KINDS), runId: id.optional(), evaluation: id.optional(), ui: z.record(z.string(), z.unknown()).optional() })),
};

/** Events every panel may receive. */
export interface CommonEvents {
  /** The artifacts behind the panel changed (a job finished): reload. */
  refresh: { reason: string };
  theme: { theme: 'light' | 'dark' | 'high-contrast' | 'high-contrast-light' };
}

// ------------------------------------------------------------------------------------- dataset

export const datasetRequests = {
  ...commonRequests,
  load: request<DatasetView>()(z.object({})),
  /** A random grid of patches (a new sample each call unless seed is given). */
  sample: request<DatasetView['sample']>()(
    z.object({ count: z.number().int().min(1).max(400), seed: z.number().int().optional(), split: z.enum(['train', 'val', 'test']).optional() })),
};
export type DatasetEvents = CommonEvents;

// ------------------------------------------------------------------------------------- training

export const trainingRequests = {
  ...commonRequests,
  /**
   * The run (default: the panel's, else the newest); null when the output folder has no run yet.
   * `cv` instead: that cross-validation's running fold, else its first unfinished one, else fold 1.
   */
  load: request<TrainingView | null>()(z.object({ runId: id.optional(), cv: id.optional() })),
  /** Every run of the output folder, oldest first: to switch to or overlay. */
  runs: request<RunSummary[]>()(z.object({})),
  /** The cross-validations of the output folder, oldest first: each is one selector entry over its fold runs. */
  cvs: request<CvListItem[]>()(z.object({})),
  /** Another run's history, to overlay its validation curves. */
  compare: request<{ run: RunSummary; history: TrainingEpoch[] }>()(z.object({ runId: id })),
  /** Stops the running training job (only when it trains the run the panel shows). */
  stop: request<void>()(z.object({})),
  /** Resumes an interrupted run (the idc.resume command). */
  resume: request<void>()(z.object({ runId: id })),
};
export interface TrainingEvents extends CommonEvents {
  /** An epoch of a run ended (the page keeps those of the run it shows). */
  epoch: { runId: string; epoch: TrainingEpoch; epochs: number };
  /**
   * Batch progress of the running training, at most 4 a second. epoch is 1-based; step/steps count
   * training batches (phase 'validate': images scored of the validation split).
   */
  batch: { runId: string; epoch: number; epochs: number; step: number; steps: number; phase?: 'train' | 'validate'; loss?: number; imagesPerSecond?: number; etaSeconds?: number };
  /** A training job started, finished, failed or was cancelled (runId: the run it trains, once known). */
  job: { runId?: string; state: 'running' | 'finished' | 'failed' | 'cancelled'; message?: string };
}

// ------------------------------------------------------------------------------------- threshold explorer

export const thresholdRequests = {
  ...commonRequests,
  /** The evaluation (default: the panel's, else the newest); null when the output folder has none yet. */
  load: request<ThresholdView | null>()(z.object({ evaluation: id.optional() })),
  /** Writes the threshold into evaluate.pinnedThresholds of idc.config.json (kept sorted, no duplicates); unpin removes it. */
  pin: request<{ pinned: number[] }>()(z.object({ threshold, unpin: z.boolean().optional() })),
  /** Makes the threshold the working one (evaluate.threshold). */
  setWorking: request<void>()(z.object({ threshold })),
};
export type ThresholdEvents = CommonEvents;

// ------------------------------------------------------------------------------------- gallery

export const CELLS = ['fn', 'fp', 'tp', 'tn'] as const;
export type Cell = (typeof CELLS)[number];

export const galleryRequests = {
  ...commonRequests,
  /** One page of a confusion-matrix cell at a threshold, worst first. */
  /** Threshold default: evaluate.threshold now. Null when the output folder has no evaluation yet. */
  page: request<GalleryPage | null>()(
    z.object({ evaluation: id.optional(), cell: z.enum(CELLS), threshold: threshold.optional(), offset: z.number().int().min(0), limit: z.number().int().min(1).max(2000), patient: id.optional() })),
  /** Webview URIs of the Grad-CAM overlays evaluate wrote for these patches (null where there is none). */
  gradcam: request<Record<string, string | null>>()(
    z.object({ evaluation: id.optional(), ids: z.array(id).max(200) })),
  /** The cell and position of one patch at a threshold (to open the gallery focused on it); null when it is not in the evaluation. */
  locate: request<{ cell: Cell; index: number; patient?: string } | null>()(
    z.object({ evaluation: id.optional(), id, threshold: threshold.optional(), patient: id.optional() })),
};
export type GalleryEvents = CommonEvents;

// ------------------------------------------------------------------------------------- slide map

export const slideMapRequests = {
  ...commonRequests,
  /** One patient's slide (default: the worst at the threshold); null when the folder has no evaluation yet. */
  load: request<SlideMapView | null>()(
    z.object({ evaluation: id.optional(), patient: id.optional(), threshold: threshold.optional() })),
};
export type SlideMapEvents = CommonEvents;

export const PANEL_REQUESTS = {
  dataset: datasetRequests,
  training: trainingRequests,
  threshold: thresholdRequests,
  gallery: galleryRequests,
  slidemap: slideMapRequests,
} satisfies Record<PanelKind, RequestMap>;

export interface PanelEvents {
  dataset: DatasetEvents;
  training: TrainingEvents;
  threshold: ThresholdEvents;
  gallery: GalleryEvents;
  slidemap: SlideMapEvents;
}
