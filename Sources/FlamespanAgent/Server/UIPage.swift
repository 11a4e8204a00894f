/// The UI: one hand-written page, served from the binary, that talks to the API on the same origin.
enum UIPage {
  static let html = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>Flamespan</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>
    body{font:13px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
    header{display:flex;gap:10px;align-items:center;padding:8px 12px;background:#263238;color:#fff;flex-wrap:wrap}
    header h1{font-size:16px;margin:0 12px 0 0}
    header select,header input,header button{font:inherit;padding:3px 6px}
    main{display:grid;grid-template-columns:minmax(0,1fr) 420px;gap:10px;padding:10px}
    section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;min-width:0}
    h2{font-size:14px;margin:0 0 6px}
    #flame{position:relative;overflow:hidden;min-height:60px}
    .f{position:absolute;height:17px;line-height:17px;font-size:11px;overflow:hidden;white-space:nowrap;
     text-overflow:ellipsis;padding:0 3px;box-sizing:border-box;border:1px solid #fff;cursor:pointer;border-radius:2px}
    .f.hit{background:#e040fb!important;color:#fff}
    .f.dim{opacity:.35}
    #tip{position:fixed;pointer-events:none;background:#000c;color:#fff;padding:4px 8px;border-radius:3px;display:none;font-size:12px;max-width:600px;z-index:9}
    table{border-collapse:collapse;width:100%;font-size:12px}
    td,th{padding:3px 5px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
    tbody tr{cursor:pointer}tbody tr:hover{background:#e3f2fd}tr.sel{background:#bbdefb}
    td.name{max-width:190px;overflow:hidden;text-overflow:ellipsis}
    #crumbs{font-size:12px;color:#555;margin-bottom:4px;min-height:16px}
    .err{color:#c62828}
    </style></head><body>
    <header><h1>Flamespan</h1>
    <label>Range <select id="range"><option value="300000">last 5 min</option><option value="900000" selected>last 15 min</option>
    <option value="3600000">last hour</option><option value="21600000">last 6 h</option></select></label>
    <label>Process <select id="pid"><option value="">all processes</option></select></label>
    <input id="search" placeholder="search functions (regex)" size="26">
    <input id="token" type="password" placeholder="API token" size="14" hidden>
    <button id="reset">Reset zoom</button><button id="whole">Whole machine</button><button id="refresh">Refresh</button>
    <span id="summary"></span></header>
    <main><section><h2 id="title">CPU flame graph</h2><div id="crumbs"></div><div id="flame"></div></section>
    <section><h2>Recent spans, slowest first</h2><table><thead><tr><th>Span</th><th>ms</th><th>Status</th><th>CPU samples</th><th>PID</th></tr></thead>
    <tbody id="spans"></tbody></table></section></main><div id="tip"></div>
    <script>
    "use strict";
    const $=id=>document.getElementById(id);
    let tree=null,zoom=null,view={kind:"machine"};
    function range(){const to=Date.now();return {from:to-Number($("range").value),to}}
    function hue(name){let h=0;for(const c of name)h=(h*31+c.charCodeAt(0))>>>0;
     if(/^\[|\]$/.test(name))return "hsl(210,15%,75%)";
     if(/^(__|do_|sys_|ksys|entry_|x64_|asm_|irq|schedule)/.test(name))return "hsl("+(30+h%20)+",75%,62%)";
     return "hsl("+(h%50)+",80%,"+(58+h%12)+"%)"}
    function fmtPct(v,t){return t?(100*v/t).toFixed(2)+"%":"0%"}
    // With --api-token-file the API wants the token: asked for on the first 401, kept for this tab only.
    function auth(){const t=sessionStorage.getItem("flamespanToken");return t?{Authorization:"Bearer "+t}:{}}
    async function getJSON(url){const r=await fetch(url,{headers:auth()});
     if(r.status===401){$("token").hidden=false;throw new Error("this agent requires an API token: enter it above")}
     if(!r.ok){let m=await r.text();try{m=JSON.parse(m).message||m}catch(e){}throw new Error(url+": HTTP "+r.status+" "+m)}
     return r.json()}
    function pathTo(node,target,acc){acc.push(node);if(node===target)return true;
     for(const c of node.c||[])if(pathTo(c,target,acc))return true;acc.pop();return false}
    function draw(){
     const box=$("flame");box.innerHTML="";if(!tree||!tree.root.v){box.innerHTML="<p>No samples in this range yet.</p>";$("crumbs").textContent="";return}
     const focus=zoom||tree.root,W=box.clientWidth||800,total=tree.root.v,rows=[];
     const re=$("search").value?safeRegex($("search").value):null;
     const chain=[];pathTo(tree.root,focus,chain);
     let depth=0;for(const a of chain.slice(0,-1)){place(a,0,W,depth++,true)}
     layout(focus,0,W,depth);
     function layout(n,x,w,d){place(n,x,w,d,false);let cx=x;for(const c of n.c||[]){const cw=w*c.v/n.v;if(cw>=1)layout(c,cx,cw,d+1);cx+=cw}}
     function place(n,x,w,d,anc){const e=document.createElement("div");e.className="f"+(anc?" dim":"");
      e.style.left=x+"px";e.style.width=Math.max(w,1)+"px";e.style.top=(d*18)+"px";e.style.background=hue(n.n);
      e.textContent=w>30?n.n:"";e.dataset.name=n.n;if(re&&re.test(n.n))e.classList.add("hit");
      e.onmousemove=ev=>{const t=$("tip");t.style.display="block";t.style.left=(ev.clientX+12)+"px";t.style.top=(ev.clientY+12)+"px";
       t.textContent=n.n+" — "+n.v+" samples, "+fmtPct(n.v,total)+" of all"+(zoom?", "+fmtPct(n.v,focus.v)+" of zoomed":"")};
      e.onmouseleave=()=>{$("tip").style.display="none"};
      e.onclick=()=>{zoom=(n===tree.root)?null:n;draw()};box.appendChild(e);rows.push(d)}
     box.style.height=((Math.max(...rows)+1)*18+4)+"px";
     $("crumbs").textContent=chain.map(n=>n.n).join(" › ")+"  ("+focus.v+" samples, "+fmtPct(focus.v,total)+")";
     if(re){let m=0;(function walk(n){if(re.test(n.n)){m+=n.v;return}for(const c of n.c||[])walk(c)})(focus);
      $("crumbs").textContent+="  — search matches "+fmtPct(m,focus.v)}
    }
    function safeRegex(s){try{return new RegExp(s)}catch(e){return new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g,"\\$&"))}}
    async function loadProfile(){
     const r=range();let url;
     if(view.kind==="span"){url="/api/traces/"+encodeURIComponent(view.traceId)+"/profile?format=json"+(view.spanId?"&spanId="+encodeURIComponent(view.spanId):"");
      $("title").textContent="Span "+view.name+" — trace "+view.traceId}
     else{url="/api/profile?format=json&from="+r.from+"&to="+r.to+($("pid").value?"&pid="+$("pid").value:"");
      $("title").textContent="CPU flame graph — "+($("pid").value?$("pid").selectedOptions[0].textContent:"whole machine")}
     try{tree=await getJSON(url);zoom=null;$("flame").dataset.view=view.kind;$("flame").dataset.samples=tree.totalSamples;draw();
      $("summary").textContent=tree.totalSamples+" samples"}
     catch(e){$("flame").innerHTML="<p class=err></p>";$("flame").firstChild.textContent=String(e)}}
    async function loadProcesses(){const r=range();const sel=$("pid"),keep=sel.value;
     try{const ps=await getJSON("/api/processes?from="+r.from+"&to="+r.to);
      sel.innerHTML="<option value=''>all processes</option>"+ps.map(p=>"<option value='"+p.pid+"'></option>").join("");
      ps.forEach((p,i)=>{sel.options[i+1].textContent=p.name+" ["+p.pid+"] "+p.samples});sel.value=keep}catch(e){}}
    async function loadSpans(){const r=range();const body=$("spans");
     try{const spans=await getJSON("/api/spans?limit=100&from="+r.from+"&to="+r.to+($("pid").value?"&pid="+$("pid").value:""));
      body.innerHTML="";for(const s of spans){const tr=document.createElement("tr");tr.dataset.spanId=s.spanId;tr.dataset.traceId=s.traceId;
       const cells=[s.name,(s.durationNanos/1e6).toFixed(1),s.status==null?"":s.status,s.cpuSamples,s.pid];
       cells.forEach((c,i)=>{const td=document.createElement("td");td.textContent=c;if(i===0){td.className="name";td.title=s.name+"\ntrace "+s.traceId+"\nspan "+s.spanId}tr.appendChild(td)});
       if(view.kind==="span"&&view.spanId===s.spanId)tr.classList.add("sel");
       tr.onclick=()=>{location.hash="trace="+s.traceId+"&span="+s.spanId+"&name="+encodeURIComponent(s.name)};body.appendChild(tr)}
      if(!spans.length)body.innerHTML="<tr><td colspan=5>No HTTP spans in this range.</td></tr>"}
     catch(e){body.innerHTML="<tr><td colspan=5 class=err></td></tr>";body.querySelector("td").textContent=String(e)}}
    // A span's flame graph has its own address (#trace=…&span=…&name=…), so it can be linked and reloaded.
    function fromHash(){const h=new URLSearchParams(location.hash.slice(1));
     if(h.get("trace")){view={kind:"span",traceId:h.get("trace"),spanId:h.get("span")||"",name:h.get("name")||h.get("trace")};
      document.querySelectorAll("#spans tr").forEach(x=>x.classList.toggle("sel",x.dataset.spanId===view.spanId))}
     else view={kind:"machine"}}
    window.onhashchange=()=>{fromHash();loadProfile()};fromHash();
    function refresh(){loadProcesses();loadSpans();loadProfile()}
    $("range").onchange=refresh;$("pid").onchange=()=>{view={kind:"machine"};loadSpans();loadProfile()};
    $("search").oninput=draw;$("reset").onclick=()=>{zoom=null;draw()};
    $("whole").onclick=()=>{document.querySelectorAll("tr.sel").forEach(x=>x.classList.remove("sel"));
     if(location.hash)location.hash="";else{view={kind:"machine"};loadProfile()}};
    $("token").onchange=()=>{sessionStorage.setItem("flamespanToken",$("token").value.trim());refresh()};
    $("refresh").onclick=refresh;window.onresize=draw;refresh();
    </script></body></html>
    """#
}
