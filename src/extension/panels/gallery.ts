import type * as vscode from 'vscode';
import type * as W from '../../protocol/webview';
import * as P from '../../protocol/protocol';
import { buildGalleryPage, gradCamPaths, locateInGallery, type GalleryContext } from '../../core/views/gallery';
import { readEvaluateSettings } from '../../core/views/threshold';
import { IdcPanel, type PanelHandlers, type PanelHost } from './panel';
import type { JobEvent } from '../jobs';
import { evaluationId } from '../../core/views/ids';

/**
 * Error gallery: one confusion-matrix cell at a threshold, most wrong first, paged as the page
 * scrolls. Patch and Grad-CAM files become webview URIs here (confined to the dataset and output
 * folders by imageUri()).
 */
export class GalleryPanel extends IdcPanel<'gallery'> {
  protected override readonly reloadAfter: readonly P.JobKind[] = ['evaluate', 'cv'];

  constructor(panel: vscode.WebviewPanel, host: PanelHost, state: W.PanelState, info: P.WorkspaceInfo) {
    super('gallery', panel, host, state, info);
  }

  /** Queues a job and resolves when it has finished (rejects when it failed or was cancelled). */
  private async runAndWait(request: P.JobRequest): Promise<void> {
    const ended = new Promise<void>((resolve, reject) => {
      let jobId: string | undefined;
      const early: JobEvent[] = [];
      const settle = (e: JobEvent): void => {
        if (e.type === 'finished') resolve();
        else if (e.type === 'failed') reject(new Error(e.params.message));
        else if (e.type === 'cancelled') reject(new Error('Cancelled.'));
        else return;
        sub.dispose();
      };
      const sub = this.host.idc.tracker.onJobEvent((e) => {
        if (e.type === 'started' || e.type === 'progress' || e.type === 'epoch') return;
        if (jobId === undefined) early.push(e);
        else if (e.params.jobId === jobId) settle(e);
      });
      void this.host.idc.request(P.runJob, request).then((r) => {
        jobId = r.jobId;
        for (const e of early) if ('jobId' in e.params && e.params.jobId === jobId) settle(e);
      }, (err: unknown) => { sub.dispose(); reject(err as Error); });
    });
    await ended;
  }

  private context(evaluation: string | undefined, working?: number): GalleryContext {
    return { outputDir: this.info.outputDir, archive: this.info.archive, evaluations: this.info.evaluations, evaluation: evaluation ?? this.state.evaluation, working };
  }

  protected handlers(): PanelHandlers<'gallery'> {
    return {
      page: async ({ evaluation, ...q }) => {
        const settings = await readEvaluateSettings(this.folder);
        const page = buildGalleryPage(this.context(evaluation, settings?.threshold), q);
        if (!page) return null;
        this.state = { ...this.state, evaluation: page.evaluation };
        for (const it of page.items) {
          it.imageUri = it.image ? this.imageUri(it.image) ?? null : null;
          it.gradcamUri = it.gradcam ? this.imageUri(it.gradcam) ?? null : null;
        }
        return page;
      },
      gradcam: async ({ evaluation, ids }) => {
        const ctx = this.context(evaluation);
        let paths = gradCamPaths(ctx, ids);
        const missing = ids.filter((id) => !paths[id]);
        const dir = this.info.evaluations.find((e) => evaluationId(e) === (evaluation ?? this.state.evaluation))?.dir ?? this.info.evaluations.at(-1)?.dir;
        if (missing.length && dir) {
          // TF.js runs in a job process of the language server, never here.
          await this.runAndWait({ kind: 'gradcam', folder: this.folder, evalDir: dir, ids: missing });
          paths = gradCamPaths(ctx, ids);
        }
        return Object.fromEntries(Object.entries(paths).map(([id, p]) => [id, p ? this.imageUri(p) ?? null : null]));
      },
      locate: async ({ evaluation, id, threshold, patient }) => {
        const t = threshold ?? (await readEvaluateSettings(this.folder))?.threshold;
        const ctx = this.context(evaluation);
        return locateInGallery(ctx, id, t, patient);
      },
    };
  }
}
