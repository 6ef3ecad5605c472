/** The report's stylesheet and its one optional script (table sorting; opening <details> for print). */

export const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--border:#d5dbe1;--panel:#f6f8fa;--grid:#e6e9ed;--hl:#fff4d6;
--c1:#0072b2;--c2:#d55e00;--c3:#009e73;--c4:#cc79a7;--c5:#e69f00;--c6:#1f2328;--ok:#00795a;--bad:#b34700}
@media screen and (prefers-color-scheme:dark){:root{--bg:#0f1318;--fg:#e6edf3;--muted:#9aa4ae;--border:#313944;--panel:#161b22;--grid:#252c35;--hl:#3a3320;
--c1:#56b4e9;--c2:#e69f00;--c3:#2cc194;--c4:#e09ac3;--c5:#f0e442;--c6:#e6edf3;--ok:#3ccf9c;--bad:#ff9a52}}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0 auto;max-width:1180px;padding:28px 24px 48px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:1.75rem;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:1.3rem;margin:0 0 12px;padding-top:8px}
h3{font-size:1.02rem;margin:22px 0 8px}
p{margin:6px 0 10px}
code{font:0.88em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
pre{background:var(--panel);border:1px solid var(--border);border-radius:8px;padding:10px 12px;overflow:auto;font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
a{color:var(--c1)}
.muted{color:var(--muted)}
.meta{color:var(--muted);margin:0 0 16px}
.meta span+span::before{content:" · "}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:6px;padding:0;margin:0 0 8px}
nav a{display:inline-block;padding:3px 10px;border:1px solid var(--border);border-radius:999px;text-decoration:none;color:var(--fg);font-size:.9em}
nav a:hover{background:var(--panel)}
section{border-top:1px solid var(--border);margin-top:28px;padding-top:14px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:8px 0 14px}
.kpi{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:10px 14px}
.kpi .k{color:var(--muted);font-size:.85em}
.kpi .v{font-size:1.75em;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.25}
.kpi .s{color:var(--muted);font-size:.8em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:14px;align-items:start}
.grid.small{grid-template-columns:repeat(auto-fit,minmax(250px,1fr))}
.grid.pies{grid-template-columns:repeat(auto-fit,minmax(190px,1fr))}
figure{margin:0}
figure.chart{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:10px 12px;break-inside:avoid}
figure.chart figcaption{font-weight:600;font-size:.95em;margin-bottom:4px}
figure.chart>svg{display:block;width:100%;height:auto;font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;overflow:visible}
figure.pie>svg{max-width:220px;margin:0 auto}
svg text{fill:var(--muted)}
svg text.label{fill:var(--fg);font-size:11.5px}
.gridlines line{stroke:var(--grid);stroke-width:1}
.axis line{stroke:var(--muted);stroke-width:1}
.series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.sw{stroke-width:2.5}
.dash{stroke-dasharray:6 4}
.dot{stroke-dasharray:1.5 3.5}
.c1{stroke:var(--c1)}.c2{stroke:var(--c2)}.c3{stroke:var(--c3)}.c4{stroke:var(--c4)}.c5{stroke:var(--c5)}.c6{stroke:var(--c6)}
.f1{fill:var(--c1)}.f2{fill:var(--c2)}.f3{fill:var(--c3)}.f4{fill:var(--c4)}.f5{fill:var(--c5)}.f6{fill:var(--c6)}
.ref{stroke:var(--muted);stroke-width:1.3;stroke-dasharray:3 4}
.band{fill-opacity:.18;stroke:none}
td.ci{color:var(--muted);font-size:.85em;white-space:nowrap}
.vline{stroke-width:1.6}.vline.best{stroke:var(--c3)}.vline.lr{stroke:var(--c5);stroke-dasharray:5 3}
.mk{stroke:var(--bg);stroke-width:1.4}
.slice{stroke:var(--bg);stroke-width:2}
.empty{fill:none;stroke:var(--border);stroke-dasharray:4 4}
svg text.pie-label,svg text.bar-label{fill:var(--bg);font-weight:650;font-size:13px}
svg text.pie-label.muted{fill:var(--muted)}
.bar text{font-size:12px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:3px 14px;padding:0;margin:6px 0 0;font-size:12.5px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:5px}
.swatch{flex:none;overflow:visible}
.table-wrap{overflow:auto;border:1px solid var(--border);border-radius:10px;margin:8px 0}
.table-wrap.tall{max-height:560px}
table{border-collapse:collapse;width:100%;font-size:13.5px;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid var(--border);text-align:left;white-space:nowrap}
th{background:var(--panel);font-weight:600;position:sticky;top:0;z-index:1}
td.num,th.num{text-align:right}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover td{background:var(--panel)}
tr.working td{background:var(--hl)}
td.wrap{white-space:normal;overflow-wrap:anywhere}
.tag{display:inline-block;font-size:.75em;padding:0 6px;border-radius:999px;border:1px solid var(--border);color:var(--muted);margin-left:6px;vertical-align:1px}
button.sort{all:unset;cursor:pointer}
button.sort:focus-visible{outline:2px solid var(--c1)}
th[aria-sort=ascending] button.sort::after{content:" ▲";font-size:.75em}
th[aria-sort=descending] button.sort::after{content:" ▼";font-size:.75em}
.check{padding:8px 12px;border-radius:8px;border:1px solid var(--border);background:var(--panel)}
.check b{margin-right:6px}
.check.ok b{color:var(--ok)}.check.bad b{color:var(--bad)}
.warn{border-left:3px solid var(--c5);padding:4px 10px;background:var(--panel);border-radius:0 6px 6px 0}
.errors{display:grid;grid-template-columns:repeat(auto-fill,minmax(188px,1fr));gap:10px}
.err{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:8px;break-inside:avoid}
.err .imgs{display:flex;gap:6px}
.err img,.ph{width:84px;height:84px;border-radius:6px;image-rendering:pixelated;display:block}
.ph{border:1px dashed var(--border);color:var(--muted);font-size:11px;display:flex;align-items:center;justify-content:center;text-align:center}
.err figcaption{font-size:12.5px;margin-top:6px;line-height:1.35}
.err .score{font-weight:650;font-variant-numeric:tabular-nums}
.slides{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.slides figure{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:8px;break-inside:avoid}
.slides img{width:100%;height:auto;display:block;border-radius:6px;image-rendering:pixelated}
.slides figcaption{font-size:13px;margin-top:6px}
details{margin:10px 0}
summary{cursor:pointer;color:var(--muted)}
footer{margin-top:36px;color:var(--muted);font-size:12.5px;border-top:1px solid var(--border);padding-top:10px}
@media (max-width:600px){body{padding:16px 12px}.grid{grid-template-columns:1fr}}
@media print{
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
:root{color-scheme:light}
body{max-width:none;padding:0;font-size:10.5pt}
nav{display:none}
.table-wrap,.table-wrap.tall{max-height:none;overflow:visible}
th{position:static}
section{break-inside:auto}
h2,h3{break-after:avoid}
tr,figure,.kpi,.check{break-inside:avoid}
a{color:inherit;text-decoration:none}
}
`;

export const SCRIPT = `(function(){
function key(td){var v=td.getAttribute('data-v');if(v===null)return td.textContent.trim();return v===''?null:Number(v);}
document.querySelectorAll('table.sortable').forEach(function(table){
var ths=table.tHead.rows[0].cells;
Array.prototype.forEach.call(ths,function(th,i){
var b=document.createElement('button');b.type='button';b.className='sort';
while(th.firstChild)b.appendChild(th.firstChild);th.appendChild(b);
b.addEventListener('click',function(){
var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
rows.sort(function(r,s){var a=key(r.cells[i]),c=key(s.cells[i]);
if(a===null||c===null)return a===null?(c===null?0:1):-1;
if(typeof a==='number'&&typeof c==='number')return (a-c)*dir;
return String(a).localeCompare(String(c),undefined,{numeric:true})*dir;});
rows.forEach(function(r){body.appendChild(r);});
});});});
addEventListener('beforeprint',function(){document.querySelectorAll('details').forEach(function(d){d.open=true;});});
})();`;
