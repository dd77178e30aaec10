"""An agent speaking NeMo Gym's protocol (`POST /run`), started the way gym-run starts NeMo Gym's.

Not NeMo Gym's code: a small aiohttp app that finds its resources and model servers through NeMo
Gym's environment (NEMO_GYM_CONFIG_DICT) and, like NeMo Gym's simple_agent, passes the row's
`responses_create_params` (metadata included) to every model call: seed_session, model, one tool
call per function_call, model again, verify. `fail_on` makes /run answer 500 for a row whose user
text contains it, as NeMo Gym 0.4's agents answer an exception.
"""

import json
import os

import aiohttp
import yaml
from aiohttp import web

CONFIG = yaml.safe_load(os.environ["NEMO_GYM_CONFIG_DICT"])
NAME = os.environ["NEMO_GYM_CONFIG_PATH"]


def server(name):
    ((config,),) = [list(v.values()) for v in CONFIG[name].values()]
    return config


ME = server(NAME)
RESOURCES = server(ME["resources_server"]["name"])
MODEL = server(ME["model_server"]["name"])


def url(config, path):
    return f"http://{config['host']}:{config['port']}{path}"


async def run(request: web.Request) -> web.Response:
    row = await request.json()
    params = row["responses_create_params"]
    if ME.get("fail_on") and ME["fail_on"] in json.dumps(params["input"]):
        return web.json_response("RuntimeError('the fake agent failed')", status=500)
    if ME.get("soft_fail_on") and ME["soft_fail_on"] in json.dumps(params["input"]):
        # as NeMo Gym's agents since 0.5 answer a failed rollout: 200 and a failure class
        failure = {"_ng_failure_class": "env_timeout", "_ng_failure_message": "tool took too long"}
        return web.json_response({**row, **failure})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(url(RESOURCES, "/seed_session"), json=row) as resp:
            cookies = {k: m.value for k, m in resp.cookies.items()}
        outputs = []
        usage = None
        for _ in range(4):
            body = {**params, "input": params["input"] + outputs}
            async with http.post(url(MODEL, "/v1/responses"), json=body) as resp:
                if resp.status != 200:
                    return web.json_response(await resp.text(), status=500)
                answer = await resp.json()
            outputs += answer["output"]
            if usage is None:
                usage = dict(answer["usage"])
            else:
                for key in ("input_tokens", "output_tokens", "total_tokens"):
                    usage[key] += answer["usage"][key]
            calls = [o for o in answer["output"] if o["type"] == "function_call"]
            if not calls:
                break
            for call in calls:
                async with http.post(
                    url(RESOURCES, "/" + call["name"]),
                    json=json.loads(call["arguments"]),
                    cookies=cookies,
                ) as resp:
                    text = await resp.text()
                outputs.append(
                    {"type": "function_call_output", "call_id": call["call_id"], "output": text}
                )
        answer["output"], answer["usage"] = outputs, usage
        async with http.post(
            url(RESOURCES, "/verify"), json={**row, "response": answer}, cookies=cookies
        ) as resp:
            return web.json_response(await resp.json())


async def liveness(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


app = web.Application()
app.router.add_get("/", liveness)
app.router.add_post("/run", run)
web.run_app(app, host=ME["host"], port=ME["port"], print=None)
