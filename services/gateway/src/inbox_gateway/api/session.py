"""``/api/auth/login``, ``/api/auth/logout``, ``/api/me``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody

from inbox_core.http_errors import error_response
from inbox_gateway import models as m
from inbox_gateway.api.common import GatewayDep, PrincipalDep, errors
from inbox_gateway.auth import LoginThrottled, client_ip
from inbox_gateway.gateway import Gateway


def _cookie(gateway: Gateway, value: str, max_age: int) -> Cookie:
    return Cookie(key=gateway.settings.cookie_name, value=value, max_age=max_age, path="/", httponly=True,
                  samesite="lax", secure=gateway.settings.cookie_secure)


def profile(agent_id: str, name: str, email: str, roles: dict[str, str]) -> m.AgentProfile:
    return m.AgentProfile(id=agent_id, name=name, email=email,
                          role="admin" if "admin" in roles.values() else "agent")


@post("/api/auth/login", status_code=200, security=[], tags=["auth"], summary="Sign in",
      responses=errors(429), description="Returns a session token and sets it as an HttpOnly session cookie. "
      "Attempts are limited per email and per client address (429 with Retry-After).")
async def login(gateway: GatewayDep, request: Request[Any, Any, Any], data: JSONBody[m.LoginBody]) -> Response[Any]:
    try:
        token, expires_at, agent = await gateway.auth.login(data.email, data.password,
                                                       client_ip(request, gateway.settings.trusted_proxy_hops))
    except LoginThrottled as exc:
        return error_response(429, exc.code, exc.message, exc.details, headers={"Retry-After": str(exc.retry_after)})
    roles = await gateway.accounts.roles_of(agent.id)
    body = m.LoginResponse(token=token, agent=profile(agent.id, agent.name, agent.email, roles),
                           expires_at=expires_at)
    return Response(body, status_code=200, cookies=[_cookie(gateway, token, gateway.settings.token_ttl_s)],
                    headers={"Cache-Control": "no-store"})


@post("/api/auth/logout", status_code=204, security=[], tags=["auth"], summary="Sign out",
      responses=errors(), description="Ends the session (its token stops working on every replica) and "
      "clears the cookie. Answers 204 even without a valid session.")
async def logout(gateway: GatewayDep, request: Request[Any, Any, Any]) -> Response[None]:
    found = gateway.auth.token_of(request)
    claims = gateway.auth.tokens.read(found[0]) if found else None
    if claims is not None:
        await gateway.accounts.revoke_session(claims[1])
    return Response(None, status_code=204, cookies=[_cookie(gateway, "", 0)])


@get("/api/me", tags=["auth"], summary="The signed-in agent and its workspaces", responses=errors())
async def me(gateway: GatewayDep, principal: PrincipalDep) -> m.Me:
    workspaces = await gateway.accounts.get_workspaces(principal.workspaces)
    return m.Me(agent=profile(principal.agent_id, principal.name, principal.email, principal.roles),
                workspaces=[m.WorkspaceRef(id=w.id, name=w.name, role=principal.roles[w.id],  # type: ignore[arg-type]
                                           currency=w.currency) for w in workspaces])
