// Small shared pieces: loading, empty and error states, and the links that navigate in-app.

import type { ComponentChildren } from "preact";
import { ApiError } from "./api";
import { keepAccount } from "./connect";

export function Loading({ what }: { what: string }) {
  return <p class="loading" role="status">Loading {what}…</p>;
}

export function ErrorNote({ error }: { error: unknown }) {
  const e = error as ApiError;
  const text =
    e?.code === "NOT_FOUND"
      ? "Not found: it does not exist, or it is not yours to see."
      : e?.code === "FORBIDDEN"
        ? "Only an admin may see this."
        : e?.code === "RATE_LIMITED"
          ? "Too many requests; wait a moment and try again."
          : (e?.message ?? "Something went wrong.");
  return <p class="error" role="alert" data-code={e?.code}>{text}</p>;
}

/** An in-app link; the chosen Connect account (`?account=`) goes along. */
export function Link({ href, children, class: className, testid }: { href: string; children: ComponentChildren; class?: string; testid?: string }) {
  return (
    <a
      href={keepAccount(href)}
      class={className}
      data-testid={testid}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey) return;
        e.preventDefault();
        history.pushState(null, "", keepAccount(href));
        dispatchEvent(new PopStateEvent("popstate"));
      }}
    >
      {children}
    </a>
  );
}

export function Card({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="panel">
      <h2>{title}</h2>
      {children}
    </section>
  );
}
