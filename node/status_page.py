"""``GET /``: the node's status page for its owner - one small HTML page, no dependencies, no token.

It shows the name, the state and why, the jobs running and their progress, the GPUs, the uptime, the
version and how to pair. Its Pause and Resume buttons ask for the farm token and keep it in the
page's memory only: the page signs each request in the browser exactly as the farm does
(HMAC-SHA256, protocol 2, a SHA-256 written in plain JavaScript so that it also works over plain
HTTP where WebCrypto is missing), so the token never crosses the wire and a wrong one is refused.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

from aiohttp import web

from farm.core.availability import Availability
from farm.version import __version__
from node import keys


@dataclass(frozen=True, slots=True)
class RunningJob:
    id: str
    engine: str
    progress: float


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the page shows; built from the app by :func:`gather`, rendered by :func:`render`."""

    name: str
    node_id: str
    version: str
    availability: Availability
    running: tuple[RunningJob, ...]
    queued: int
    slots: tuple[int, int]  # free, total
    gpus: tuple[str, ...]
    uptime: float
    done: int
    failed: int
    nimby: str = ""


def gather(app: web.Application) -> StatusView:
    runner, hardware = app[keys.RUNNER], app[keys.HARDWARE]
    gpus = tuple(
        f"{g.index}: {g.name}" + (f" ({g.vram_total / (1 << 30):.1f} GB)" if g.vram_total else "")
        for g in hardware.gpus
    )
    return StatusView(
        name=app[keys.CONFIG].display_name,
        node_id=app[keys.NODE_ID],
        version=__version__,
        availability=app[keys.STEWARD].current,
        running=tuple(RunningJob(j.id, j.spec.engine, j.progress) for j in runner.book.running),
        queued=runner.queued,
        slots=(runner.free, runner.slots),
        gpus=gpus or ("none (CPU only)",),
        uptime=app[keys.CLOCK]() - app[keys.STARTED],
        done=runner.book.done,
        failed=runner.book.failed,
        nimby=app[keys.STEWARD].nimby_note,
    )


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h}h {m}m" if d else f"{h}h {m}m" if h else f"{m}m {s}s"


def render(view: StatusView, *, now: float) -> str:
    e = html.escape
    a = view.availability
    until = ""
    if a.until is not None:
        until = f" until {e(time.strftime('%a %H:%M', time.localtime(a.until)))} (in {_duration(a.until - now)})"
    jobs = "".join(
        f"<li><code>{e(j.id)}</code> {e(j.engine)} <progress max=1 value={j.progress:.3f}></progress>"
        f" {j.progress * 100:.0f}%</li>"
        for j in view.running
    )
    status = f"""
<h1>{e(view.name)}</h1>
<p class="state {e(str(a.state))}" id="state">{e(str(a.state))}</p>
<p id="reason">{e(a.reason) if not a.available else "takes jobs from the farm"}{until}</p>
<table>
<tr><th>running</th><td>{len(view.running)} of {view.slots[1]} slots<ul id="jobs">{jobs}</ul></td></tr>
<tr><th>queued</th><td>{view.queued}</td></tr>
<tr><th>jobs</th><td>{view.done} done, {view.failed} failed</td></tr>
{f'<tr><th>NIMBY</th><td id="nimby">{e(view.nimby)}</td></tr>' if view.nimby else ""}
<tr><th>GPUs</th><td>{"<br>".join(e(g) for g in view.gpus)}</td></tr>
<tr><th>uptime</th><td>{_duration(view.uptime)}</td></tr>
<tr><th>version</th><td>LAN Farm {e(view.version)} &middot; node <code>{e(view.node_id)}</code></td></tr>
</table>"""
    return PAGE.replace("%STATUS%", status).replace("%NAME%", e(view.name))


async def status_page(request: web.Request) -> web.Response:
    view = gather(request.app)
    page = render(view, now=request.app[keys.CLOCK]())
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>%NAME% - LAN Farm node</title>
<style>
body{font:15px system-ui,sans-serif;margin:2em auto;max-width:40em;padding:0 1em;color:#222;background:#fafafa}
h1{margin:0 0 .2em}.state{display:inline-block;padding:.2em .7em;border-radius:1em;font-weight:600;color:#fff;
background:#888}.available{background:#2a8a3a}.paused,.schedule{background:#b07a00}.nimby{background:#8a2a6a}
.draining{background:#a33}table{border-collapse:collapse;margin:1em 0}th{text-align:left;padding:.3em 1em .3em 0;
vertical-align:top;color:#555;font-weight:500}ul{margin:.2em 0;padding-left:1.2em}
fieldset{border:1px solid #ccc;border-radius:.4em}
#msg{min-height:1.4em;font-weight:600}.bad{color:#a33}.ok{color:#2a8a3a}
input,select,button{font:inherit}
</style></head><body>
<div id="status">%STATUS%</div>
<fieldset><legend>Owner controls</legend>
<p><label>Farm token <input id="token" type="password" autocomplete="off" size="30"
placeholder="from `lanfarm token`"></label></p>
<p><select id="for"><option value="">until resumed</option><option value="3600">for 1 hour</option>
<option value="7200">for 2 hours</option><option value="28800">for 8 hours</option></select>
<button id="pause">Pause</button> <button id="resume">Resume</button></p>
<p id="msg"></p>
<p><small>The token stays in this page: each request is signed with it here, and it is never sent.</small></p>
</fieldset>
<h2>Pairing</h2>
<p>This node works for the farm whose token it holds. To add it to a farm, run <code>lanfarm token</code>
on a PC of that farm, save the line in a file here and start the node with
<code>lanfarm node --token-file FILE</code>; the app then finds it over mDNS (or add it by address).</p>
<script>
"use strict";
const K=new Uint32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,
0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,
0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,
0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,
0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,
0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,
0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
const rot=(x,n)=>(x>>>n)|(x<<(32-n));
function sha256(bytes){
  const H=new Uint32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);
  const l=bytes.length,n=((l+9+63)>>6)<<6,m=new Uint8Array(n);m.set(bytes);m[l]=0x80;
  const dv=new DataView(m.buffer);dv.setUint32(n-4,(l*8)>>>0);dv.setUint32(n-8,Math.floor(l/0x20000000));
  const w=new Uint32Array(64);
  for(let o=0;o<n;o+=64){
    for(let i=0;i<16;i++)w[i]=dv.getUint32(o+i*4);
    for(let i=16;i<64;i++){const a=w[i-15],b=w[i-2];
      w[i]=w[i-16]+(rot(a,7)^rot(a,18)^(a>>>3))+w[i-7]+(rot(b,17)^rot(b,19)^(b>>>10));}
    let a=H[0],b=H[1],c=H[2],d=H[3],e=H[4],f=H[5],g=H[6],h=H[7];
    for(let i=0;i<64;i++){
      const t1=(h+(rot(e,6)^rot(e,11)^rot(e,25))+((e&f)^(~e&g))+K[i]+w[i])|0;
      const t2=((rot(a,2)^rot(a,13)^rot(a,22))+((a&b)^(a&c)^(b&c)))|0;
      h=g;g=f;f=e;e=(d+t1)|0;d=c;c=b;b=a;a=(t1+t2)|0;}
    H[0]+=a;H[1]+=b;H[2]+=c;H[3]+=d;H[4]+=e;H[5]+=f;H[6]+=g;H[7]+=h;}
  const out=new Uint8Array(32),ov=new DataView(out.buffer);for(let i=0;i<8;i++)ov.setUint32(i*4,H[i]);return out;
}
const utf8=s=>new TextEncoder().encode(s);
const hex=b=>Array.from(b,x=>x.toString(16).padStart(2,"0")).join("");
function hmac(key,msg){
  if(key.length>64)key=sha256(key);
  const k=new Uint8Array(64);k.set(key);
  const inner=new Uint8Array(64+msg.length),outer=new Uint8Array(96);
  for(let i=0;i<64;i++){inner[i]=k[i]^0x36;outer[i]=k[i]^0x5c;}
  inner.set(msg,64);outer.set(sha256(inner),64);return hex(sha256(outer));
}
function sign(token,method,path,body){
  const ts=Math.floor(Date.now()/1000),nonce=hex(crypto.getRandomValues(new Uint8Array(16)));
  const text=["LANFARM2",method,path,ts,nonce,hex(sha256(utf8(body)))].join("\\n");
  return `LANFarm-HMAC ts=${ts}, nonce=${nonce}, sig=${hmac(utf8(token),utf8(text))}`;
}
const msg=(text,ok)=>{const m=document.getElementById("msg");m.textContent=text;m.className=ok?"ok":"bad";};
async function refresh(){
  try{const r=await fetch("/",{cache:"no-store"});const doc=new DOMParser().parseFromString(await r.text(),"text/html");
    document.getElementById("status").innerHTML=doc.getElementById("status").innerHTML;}catch(e){}
}
async function send(path,payload){
  const token=document.getElementById("token").value.trim();
  if(!token){msg("Enter the farm token first (`lanfarm token` on a PC of the farm).",false);return;}
  const body=JSON.stringify(payload);
  try{
    const r=await fetch(path,{method:"POST",body,headers:{"Content-Type":"application/json",
      "Authorization":sign(token,"POST",path,body)}});
    const data=await r.json();
    if(r.ok){msg(`Done: the node is ${data.state}.`,true);}
    else{msg(`Refused: ${(data.error&&data.error.message)||r.status}`,false);}
  }catch(e){msg(`No answer from the node: ${e}`,false);}
  await refresh();
}
document.getElementById("pause").onclick=()=>{const v=document.getElementById("for").value;
  send("/v1/pause",{"for":v?Number(v):null});};
document.getElementById("resume").onclick=()=>send("/v1/resume",{});
setInterval(refresh,3000);
</script>
</body></html>
"""
