/**
 * The console shell: sign-in with the API token, then the three panels (upload, documents, ask).
 * The token lives in sessionStorage (this tab only, gone when it closes) and in memory; any 401/403
 * signs the user out with a message saying why.
 */
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { Api, ApiError, type UploadPolicy } from "./api";
import { AskPanel } from "./ask";
import { DocumentsPanel, useDocuments } from "./documents";
import { UploadPanel } from "./uploads";

const TOKEN_KEY = "kdp.apiToken";

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

interface Session {
  api: Api;
  policy: UploadPolicy;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [signOutReason, setSignOutReason] = useState<string>();

  const signOut = useCallback((reason?: string) => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage may be disabled; the in-memory session is dropped either way.
    }
    setSession(null);
    setSignOutReason(reason);
  }, []);

  const onError = useCallback(
    (error: unknown) => {
      if (error instanceof ApiError && error.kind === "auth") signOut(error.message);
    },
    [signOut],
  );

  return (
    <>
      <header class="top">
        <h1>Documents console</h1>
        {session && (
          <button type="button" class="secondary" onClick={() => signOut()}>
            Sign out
          </button>
        )}
      </header>
      {session ? (
        <Console session={session} onError={onError} />
      ) : (
        <SignIn
          initialMessage={signOutReason}
          onSignedIn={(s) => {
            setSignOutReason(undefined);
            setSession(s);
          }}
        />
      )}
    </>
  );
}

function SignIn(props: { initialMessage?: string; onSignedIn: (s: Session) => void }) {
  const remembered = useMemo(storedToken, []);
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(props.initialMessage);

  const tryToken = useCallback(
    async (value: string, fromStorage: boolean) => {
      setBusy(true);
      setError(undefined);
      try {
        const api = new Api(value);
        const policy = await api.uploadPolicy();
        try {
          sessionStorage.setItem(TOKEN_KEY, value);
        } catch {
          // Without storage the session still works until the tab is reloaded.
        }
        props.onSignedIn({ api, policy });
      } catch (e) {
        if (fromStorage && e instanceof ApiError && e.kind === "auth") sessionStorage.removeItem(TOKEN_KEY);
        setError(e instanceof Error ? e.message : String(e));
        setBusy(false);
      }
    },
    [props.onSignedIn],
  );

  // A token kept from earlier in this tab (e.g. before a reload) signs in by itself, once.
  useEffect(() => {
    if (remembered && !props.initialMessage) void tryToken(remembered, true);
  }, []);

  return (
    <main class="signin">
      <form
        class="card"
        aria-labelledby="signin-title"
        onSubmit={(e) => {
          e.preventDefault();
          const value = token.trim();
          if (!value) {
            setError("Enter the API token.");
            return;
          }
          void tryToken(value, false);
        }}
      >
        <h2 id="signin-title">Sign in</h2>
        <p class="hint">
          Use the API token: <code>npm start</code> prints it; a deployed stack keeps it in its API token
          secret. It stays in this browser tab only.
        </p>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          spellcheck={false}
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          aria-describedby={error ? "signin-error" : undefined}
          aria-invalid={error ? true : undefined}
        />
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function Console(props: { session: Session; onError: (e: unknown) => void }) {
  const { api, policy } = props.session;
  const [filter, setFilter] = useState("");
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const docs = useDocuments(api, filter, props.onError);

  return (
    <main class="console">
      <div class="column">
        <UploadPanel
          api={api}
          policy={policy}
          documents={docs.items}
          onUploaded={docs.expectChange}
          onError={props.onError}
        />
        <DocumentsPanel
          api={api}
          docs={docs}
          filter={filter}
          onFilter={setFilter}
          selected={selected}
          onSelect={setSelected}
          onError={props.onError}
        />
      </div>
      <div class="column">
        <AskPanel
          api={api}
          documents={docs.items}
          selected={selected}
          filter={filter}
          onError={props.onError}
        />
      </div>
    </main>
  );
}
