import type * as vscode from 'vscode';

/**
 * The language client writes plain lines ("[Info  - 10:31:02] …", and the server's stdout/stderr)
 * to an OutputChannel; this passes them into the "IDC" LogOutputChannel at their level, so the
 * job log and the server's messages share one channel with one timestamp each.
 */
export function clientChannel(log: vscode.LogOutputChannel): vscode.OutputChannel {
  let partial = '';
  const line = (text: string): void => {
    const m = /^\[(Trace|Debug|Info|Warn|Error)\s*- [^\]]*\] ?([\s\S]*)$/.exec(text);
    if (!m) { if (text.trim()) log.info(text); return; }
    const level = m[1];
    const msg = m[2];
    if (level === 'Error') log.error(msg);
    else if (level === 'Warn') log.warn(msg);
    else if (level === 'Debug') log.debug(msg);
    else if (level === 'Trace') log.trace(msg);
    else log.info(msg);
  };
  return {
    name: log.name,
    append(value: string) {
      partial += value;
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const l of lines) line(l);
    },
    appendLine(value: string) {
      line(partial + value);
      partial = '';
    },
    replace(value: string) { log.replace(value); },
    clear() { log.clear(); },
    show(a?: unknown, b?: boolean) { log.show(typeof a === 'boolean' ? a : b); },
    hide() { log.hide(); },
    dispose() { /* the extension owns the channel */ },
  };
}
