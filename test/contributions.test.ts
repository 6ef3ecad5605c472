/**
 * package.json's contributions against the code: the IDC view container and its views, menus with
 * when clauses (process-starting commands only in trusted workspaces), the walkthrough, workspace
 * trust and virtual workspace capabilities; every command they name is declared and registered,
 * and every viewItem pattern matches a node the side bar's view model makes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { COMMAND_IDS, NEEDS_ARGUMENT, NEEDS_TRUST, WALKTHROUGH_ID } from '../src/extension/command-ids';
import { buildDatasetNodes, buildEvaluationNodes, buildRunNodes, type SidebarNode } from '../src/core/views/sidebar';
import { tempDir } from './helpers/fixtures';

const ROOT = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const contributes = pkg.contributes;
type MenuItem = { command: string; when?: string; group?: string };
const menus = contributes.menus as Record<string, MenuItem[]>;
const declared = new Set<string>(contributes.commands.map((c: { command: string }) => c.command));
/** VS Code's own commands our links may use. */
const BUILT_IN = new Set(['vscode.openFolder', 'workbench.trust.manage']);
const VIEWS = ['idc.dataset', 'idc.runs', 'idc.evaluations'];

/** command:<id> links in markdown text. */
const links = (text: string): string[] => [...text.matchAll(/\(command:([\w.]+)/g)].map((m) => m[1]);

describe('commands', () => {
  test('declared in package.json are exactly the ones the extension knows (COMMAND_IDS)', () => {
    assert.deepEqual([...declared].sort(), [...COMMAND_IDS].sort());
  });

  test('every one is registered: commands.ts has a handler for each in the table it registers', () => {
    const src = readFileSync(join(ROOT, 'src', 'extension', 'commands.ts'), 'utf8');
    const table = src.slice(src.indexOf('const table: Record<CommandId'), src.indexOf('\n  };', src.indexOf('const table: Record<CommandId')));
    const keys = [...table.matchAll(/^\s+'(idc\.\w+)':/gm)].map((m) => m[1]);
    assert.deepEqual([...keys].sort(), [...COMMAND_IDS].sort());
    assert.match(src, /for \(const \[id, fn\] of Object\.entries\(table\)[^\n]*\n[^\n]*vscode\.commands\.registerCommand\(id,/);
    assert.match(src, /NEEDS_TRUST\.has\(id\) && !vscode\.workspace\.isTrusted/, 'the handler refuses process-starting commands in Restricted Mode');
  });

  test('the palette keeps every command except those that need an argument', () => {
    const hidden = menus.commandPalette.filter((m) => m.when === 'false').map((m) => m.command).sort();
    assert.deepEqual(hidden, [...NEEDS_ARGUMENT].sort());
    assert.ok(menus.commandPalette.every((m) => m.when === 'false'), 'no other palette condition');
  });
});

describe('the IDC view container', () => {
  test('an activity bar container with its own monochrome SVG icon, holding Dataset, Runs and Evaluations', () => {
    const [container] = contributes.viewsContainers.activitybar;
    assert.equal(container.id, 'idc');
    assert.equal(container.title, 'IDC Inspector');
    const svg = readFileSync(join(ROOT, container.icon), 'utf8');
    assert.match(container.icon, /^media\/.+\.svg$/);
    assert.match(svg, /^<svg[^>]+viewBox="0 0 24 24"/);
    const colours = [...svg.matchAll(/(?:fill|stroke)="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(colours.length && colours.every((c) => c === 'currentColor' || c === 'none'), `one colour (currentColor): ${colours.join(', ')}`);
    assert.deepEqual(contributes.views.idc.map((v: { id: string }) => v.id), VIEWS);
  });

  test('each view has welcome content for its empty state, whose links are commands that exist', () => {
    for (const view of VIEWS) assert.ok(contributes.viewsWelcome.some((w: { view: string }) => w.view === view), `no welcome content for ${view}`);
    const used = contributes.viewsWelcome.flatMap((w: { contents: string }) => links(w.contents));
    for (const c of used) assert.ok(declared.has(c) || BUILT_IN.has(c), `welcome link to ${c}`);
    for (const c of ['idc.synth', 'idc.openConfig', 'idc.chooseArchive']) assert.ok(used.includes(c), `welcome content links ${c}`);
  });

  test('welcome content offers a job only in a trusted workspace; in Restricted Mode the same state says why and links Manage Workspace Trust', () => {
    const welcome = contributes.viewsWelcome as { view: string; when: string; contents: string }[];
    for (const w of welcome.filter((x) => links(x.contents).some((c) => NEEDS_TRUST.has(c as never)))) {
      assert.match(w.when, /&& isWorkspaceTrusted$/, `${w.view} (${w.when}) links a job`);
      const twin = welcome.find((x) => x.view === w.view && x.when === w.when.replace(/isWorkspaceTrusted$/, '!isWorkspaceTrusted'));
      assert.ok(twin, `${w.view} (${w.when}) has a Restricted Mode twin`);
      assert.ok(!links(twin.contents).some((c) => NEEDS_TRUST.has(c as never)), `${w.view} (${twin.when}) links no job`);
      assert.ok(links(twin.contents).includes('workbench.trust.manage') && /Restricted Mode/.test(twin.contents), `${w.view} (${twin.when}) says why`);
    }
  });
});

describe('menus', () => {
  const all = Object.entries(menus).filter(([where]) => where !== 'commandPalette').flatMap(([where, items]) => items.map((m) => ({ where, ...m })));

  test('every entry names a declared command and has a when clause', () => {
    for (const m of all) {
      assert.ok(declared.has(m.command), `${m.where}: ${m.command} is not declared`);
      assert.ok(m.when && m.when.trim(), `${m.where}: ${m.command} has no when clause`);
    }
  });

  test('a command that starts a process shows only in a trusted workspace', () => {
    for (const m of all.filter((x) => NEEDS_TRUST.has(x.command as never))) assert.match(m.when!, /\bisWorkspaceTrusted\b/, `${m.where}: ${m.command}`);
    for (const m of all.filter((x) => !NEEDS_TRUST.has(x.command as never))) assert.doesNotMatch(m.when!, /isWorkspaceTrusted/, `${m.where}: ${m.command} does not start a process`);
  });

  test('explorer and editor: a folder, a model.json and idc.config.json each get their actions', () => {
    const on = (where: string, test: RegExp) => menus[where].filter((m) => test.test(m.when ?? '')).map((m) => m.command).sort();
    assert.deepEqual(on('explorer/context', /explorerResourceIsFolder/), ['idc.evaluateArchive', 'idc.organizeFolder', 'idc.predict']);
    assert.match(menus['explorer/context'].find((m) => m.command === 'idc.evaluateArchive')!.when!, /idc\.hasModel/);
    assert.match(menus['explorer/context'].find((m) => m.command === 'idc.organizeFolder' && /Folder/.test(m.when!))!.when!, /!idc\.hasModel/);
    for (const where of ['explorer/context', 'editor/context']) {
      assert.deepEqual(on(where, /resourceFilename == model\.json/), ['idc.evaluateModelFile', 'idc.predictWithModel']);
      assert.deepEqual(on(where, /resourceFilename == idc\.config\.json/), ['idc.train', 'idc.validateConfig']);
    }
  });

  test('every viewItem pattern matches a node the view model makes, in the view it is for', () => {
    const nodes = fixtureNodes();
    const contexts: Record<string, string[]> = {};
    for (const [key, list] of Object.entries(nodes)) (contexts[key.split(':')[0]] ??= []).push(...list.map((n) => n.contextValue));
    for (const m of menus['view/item/context']) {
      const view = /view == ([\w.]+)/.exec(m.when!)?.[1];
      const re = /viewItem =~ \/(.+?)\/(?: |$)/.exec(m.when!)?.[1];
      assert.ok(view && VIEWS.includes(view) && re, `${m.command}: ${m.when}`);
      const pattern = new RegExp(re);
      assert.ok(contexts[view].some((c) => pattern.test(c)), `${m.command} on ${view}: /${re}/ matches none of ${[...new Set(contexts[view])].join(' | ')}`);
    }
    // Nothing acts on what it cannot read: no entry but Reveal, Copy and Delete matches an unreadable run.
    const unreadable = contexts['idc.runs'].filter((c) => /\bunreadable\b/.test(c));
    assert.ok(unreadable.length);
    const onUnreadable = menus['view/item/context'].filter((m) => /view == idc\.runs/.test(m.when!) && unreadable.some((c) => new RegExp(/viewItem =~ \/(.+?)\//.exec(m.when!)![1]).test(c))).map((m) => m.command);
    assert.deepEqual([...new Set(onUnreadable)].sort(), ['idc.copyRunId', 'idc.deleteRun', 'idc.revealInExplorer']);
  });

  test('each kind of node gets the actions that apply to it (context menu and inline)', () => {
    const nodes = fixtureNodes();
    /** The commands of node `id` of nodes[key], shown in `view` (default: the key's view). */
    const menu = (key: string, id: string, view = key.split(':')[0]): string[] => {
      const node = nodes[key].find((n) => n.id === id);
      assert.ok(node, `${key}: no node ${id}`);
      const shown = menus['view/item/context'].filter((m) => m.when!.split('&&').map((t) => t.trim()).every((t) => {
        if (t === 'isWorkspaceTrusted') return true;
        const v = /^view == ([\w.]+)$/.exec(t);
        if (v) return v[1] === view;
        const re = /^viewItem =~ \/(.+)\/$/.exec(t);
        assert.ok(re, `unexpected term "${t}" in ${m.when}`);
        return new RegExp(re[1]).test(node.contextValue);
      }));
      return [...new Set(shown.map((m) => m.command.replace(/^idc\./, '')))].sort();
    };
    const runs = 'idc.runs';
    const common = ['copyRunId', 'deleteRun', 'revealInExplorer'];
    assert.deepEqual(menu(runs, 'run:done'), [...common, 'evaluate', 'exportReport', 'showTraining'].sort());
    assert.deepEqual(menu(runs, 'run:open'), [...common, 'resume', 'showTraining'].sort());
    assert.deepEqual(menu(runs, 'run:live'), [...common, 'showTraining', 'stopJob'].sort());
    assert.deepEqual(menu(runs, 'run:broken'), common);
    assert.deepEqual(menu(runs, 'cv:cvx'), ['exportReport', 'revealInExplorer', 'showEvaluation', 'showFalseNegatives', 'showTraining']);
    assert.deepEqual(menu(runs, 'cv:cvy'), ['crossValidate', 'revealInExplorer', 'showTraining']);
    assert.deepEqual(menu(runs, 'run:cvy-fold1'), [...common, 'showTraining'].sort(), 'a fold resumes with its cross-validation');
    assert.deepEqual(menu(runs, 'ensemble:ens/test'), ['revealInExplorer', 'showEvaluation', 'showFalseNegatives']);
    assert.deepEqual(menu(runs, 'ensemble:ens/test:done'), ['copyRunId', 'showTraining']);
    assert.deepEqual(menu(runs, 'ensemble:ens/test:gone'), ['copyRunId']);
    assert.deepEqual(menu('idc.runs:live', 'cv:cvy'), ['revealInExplorer', 'showTraining', 'stopJob']);
    assert.deepEqual(menu(runs, 'cv:cvy', 'idc.evaluations'), [], 'in another view: nothing');
    const ev = 'idc.evaluations';
    assert.deepEqual(menu(ev, 'eval:done/test'), ['exportReport', 'revealInExplorer', 'showEvaluation', 'showFalseNegatives', 'showSlideMap', 'showTraining']);
    assert.deepEqual(menu(ev, 'eval:ens/test'), ['revealInExplorer', 'showEvaluation', 'showFalseNegatives', 'showSlideMap']);
    assert.deepEqual(menu(ev, 'eval:broken/test'), ['revealInExplorer']);
    const ds = 'idc.dataset';
    assert.deepEqual(menu(ds, 'dataset:archive'), ['chooseArchive']);
    assert.deepEqual(menu(`${ds}:found`, 'dataset:archive'), ['chooseArchive', 'organize']);
    assert.deepEqual(menu(ds, 'dataset:manifest'), ['organize']);
    assert.deepEqual(menu(`${ds}:split`, 'dataset:manifest'), ['revealInExplorer', 'showDataset']);
    assert.deepEqual(menu(`${ds}:split`, 'dataset:split'), ['revealInExplorer']);
  });

  test('a tree click opens a declared command', () => {
    const src = readFileSync(join(ROOT, 'src', 'core', 'views', 'sidebar.ts'), 'utf8');
    const opened = [...src.matchAll(/open: (?:[^'\n]*\? )?'(idc\.\w+)'/g)].map((m) => m[1]);
    assert.ok(opened.length >= 4);
    for (const c of opened) assert.ok(declared.has(c), c);
  });
});

describe('walkthrough', () => {
  const [w] = contributes.walkthroughs;

  test('"Get started with IDC Inspector": workspace, data, organize, split, train, false negatives, threshold', () => {
    assert.equal(w.title, 'Get started with IDC Inspector');
    assert.equal(WALKTHROUGH_ID, `${pkg.publisher}.${pkg.name}#${w.id}`, 'IDC: Get Started opens this walkthrough');
    assert.deepEqual(w.steps.map((s: { id: string }) => s.id), ['workspace', 'data', 'organize', 'split', 'train', 'falseNegatives', 'threshold']);
  });

  test('each step: a short markdown file with an image that exists, links and completion events tied to real commands and context keys', () => {
    const sidebar = readFileSync(join(ROOT, 'src', 'extension', 'sidebar.ts'), 'utf8');
    for (const s of w.steps as { id: string; description: string; media: { markdown: string }; completionEvents: string[] }[]) {
      const md = join(ROOT, s.media.markdown);
      assert.match(s.media.markdown, /^media\/walkthrough\/[\w-]+\.md$/);
      const text = readFileSync(md, 'utf8');
      assert.ok(text.length < 1200, `${s.id}: keep it short`);
      const images = [...text.matchAll(/!\[[^\]]+\]\(([^)]+)\)/g)].map((m) => m[1]);
      assert.ok(images.length >= 1 && images.length <= 2, `${s.id}: one or two images`);
      for (const img of images) {
        const file = relative(ROOT, join(dirname(md), img));
        assert.ok(existsSync(join(ROOT, file)), `${s.id}: ${img}`);
        // Only these folders ship in the .vsix (.vscodeignore): an image elsewhere is blank in the installed extension.
        assert.match(file, /^(media\/walkthrough\/[\w-]+\.svg|docs\/images\/[\w-]+\.png)$/, `${s.id}: ${img} is not shipped`);
      }
      for (const c of links(s.description)) assert.ok(declared.has(c) || BUILT_IN.has(c), `${s.id} links ${c}`);
      assert.ok(s.completionEvents.length, `${s.id} has completion events`);
      for (const e of s.completionEvents) {
        const [kind, arg] = [e.slice(0, e.indexOf(':')), e.slice(e.indexOf(':') + 1)];
        if (kind === 'onCommand') assert.ok(declared.has(arg), `${s.id}: ${e}`);
        else if (kind === 'onContext') assert.ok(sidebar.includes(`'${arg}'`), `${s.id}: the extension never sets ${arg}`);
        else assert.fail(`${s.id}: unexpected completion event ${e}`);
      }
    }
  });
});

test('workspace trust: limited, saying why; restricted settings exist; virtual workspaces declared', () => {
  const trust = pkg.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, 'limited');
  assert.match(trust.description, /engine\.python/);
  assert.match(trust.description, /Restricted Mode/);
  for (const s of trust.restrictedConfigurations) assert.ok(s in contributes.configuration.properties, s);
  const virtual = pkg.capabilities.virtualWorkspaces;
  assert.equal(virtual.supported, false);
  assert.ok(virtual.description.length > 20);
  for (const c of ['idc.train', 'idc.evaluate', 'idc.organize', 'idc.predict', 'idc.synth', 'idc.checkGpu']) assert.ok(NEEDS_TRUST.has(c as never), c);
  for (const c of ['idc.showDataset', 'idc.showEvaluation', 'idc.showTraining', 'idc.deleteRun']) assert.ok(!NEEDS_TRUST.has(c as never), `${c} only reads or removes files`);
});

/** Nodes of every kind, per view (and per variant of a view's state), from a hand-written output folder. */
function fixtureNodes(): Record<string, SidebarNode[]> {
  const folder = tempDir();
  const out = join(folder, 'idc-output');
  const write = (file: string, content: unknown): void => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  };
  const metrics = (extra: Record<string, unknown> = {}) => ({ createdAt: '2026-01-01T00:00:00Z', model: 'm', split: 'test', n: 10, positives: 3, auc: 0.9, threshold: 0.5, operatingPoints: [], warnings: [], ...extra });
  const run = (id: string, status: string, model = false) => {
    write(join(out, 'runs', id, 'run.json'), { id, status, createdAt: '2026-01-01T00:00:00Z', backend: 'wasm', epochs: 3 });
    write(join(out, 'runs', id, 'history.jsonl'), '{"epoch":0,"val_auc":0.8}\n');
    if (model) write(join(out, 'runs', id, 'model', 'model.json'), '{}');
  };
  run('done', 'finished', true);
  run('open', 'running');
  run('live', 'running');
  write(join(out, 'runs', 'broken', 'run.json'), '{');
  write(join(out, 'runs', 'broken', 'eval', 'test', 'metrics.json'), '{');
  write(join(out, 'runs', 'done', 'eval', 'test', 'metrics.json'), metrics({ runId: 'done' }));
  write(join(out, 'evals', 'cvx', 'cv.json'), { id: 'cvx', folds: [['a'], ['b'], ['c']], warnings: [], seed: 1, createdAt: '2026-01-01T00:00:00Z' });
  run('cvx-fold1', 'finished', true);
  write(join(out, 'evals', 'cvx', 'test', 'metrics.json'), metrics({ cv: { id: 'cvx', folds: 3 } }));
  write(join(out, 'evals', 'cvy', 'cv.json'), { id: 'cvy', folds: [['a'], ['b'], ['c']], warnings: [], seed: 2, createdAt: '2026-01-01T00:00:00Z' });
  run('cvy-fold1', 'stopped');
  write(join(out, 'evals', 'ens', 'test', 'metrics.json'), metrics({ ensemble: ['done', 'gone'] }));
  write(join(out, 'manifest.csv'), 'id\n');
  write(join(out, 'organize-report.json'), { totals: { patches: 10, positives: 3, patients: 2 } });
  const flat = (ns: SidebarNode[]): SidebarNode[] => ns.flatMap((n) => [n, ...flat(n.children ?? [])]);
  const config = join(folder, 'idc.config.json');
  const dataset = flat(buildDatasetNodes({ folder, archive: join(folder, 'archive'), archiveExists: false, outputDir: join(folder, 'empty-output'), configFile: config }));
  const found = flat(buildDatasetNodes({ folder, archive: folder, archiveExists: true, outputDir: out, configFile: config }));
  write(join(out, 'split.json'), { seed: 1, ratios: [0.5, 0.25, 0.25], summary: { train: { patients: 1, patches: 5 }, val: { patients: 1, patches: 5 }, test: { patients: 1, patches: 5 } } });
  const split = flat(buildDatasetNodes({ folder, archive: folder, archiveExists: true, outputDir: out, configFile: config }));
  const runs = flat(buildRunNodes(out, { live: { runId: 'live', epoch: 1, epochs: 3 } }));
  const cvLive = flat(buildRunNodes(out, { live: { runId: 'cvy-fold2', cvId: 'cvy', fold: 2, folds: 3 } }));
  // The "<view>:<variant>" keys hold other states of a view: every menu entry is checked against all of them.
  return {
    'idc.dataset': dataset, 'idc.dataset:found': found, 'idc.dataset:split': split,
    'idc.runs': runs, 'idc.runs:live': cvLive,
    'idc.evaluations': flat(buildEvaluationNodes(out)),
  };
}
