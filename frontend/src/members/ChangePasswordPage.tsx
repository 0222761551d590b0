import { useState, type FormEvent } from "react";
import { useLogout } from "../api/hooks";
import { useTitle } from "../components/useTitle";
import { useChangePassword } from "./members";

/** Shown instead of the app while the user holds a one-time password (the API refuses everything else). */
export function ChangePasswordPage({ username }: { username: string }) {
  useTitle("Choose your password");
  const change = useChangePassword();
  const logout = useLogout();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const mismatch = repeat !== "" && next !== repeat;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!mismatch) change.mutate({ current_password: current, new_password: next });
  };
  return (
    <main className="login">
      <form onSubmit={submit} className="card" aria-labelledby="password-title">
        <h1 id="password-title">Choose your password</h1>
        <p className="muted">
          {username}, you logged in with a one-time password. Choose your own to continue.
        </p>
        <label>
          One-time password
          <input name="current-password" type="password" autoComplete="current-password" value={current}
            onChange={(e) => setCurrent(e.target.value)} required autoFocus />
        </label>
        <label>
          New password
          <input name="new-password" type="password" autoComplete="new-password" value={next}
            onChange={(e) => setNext(e.target.value)} required minLength={8} />
        </label>
        <label>
          New password again
          <input name="repeat-password" type="password" autoComplete="new-password" value={repeat}
            onChange={(e) => setRepeat(e.target.value)} required aria-invalid={mismatch} />
        </label>
        {mismatch && <p className="error" role="alert">The two new passwords differ.</p>}
        {change.error && (
          <p className="error" role="alert">
            {change.error.message}
          </p>
        )}
        <button type="submit" className="primary" disabled={change.isPending || mismatch}>
          {change.isPending ? "Saving…" : "Save password"}
        </button>
        <button type="button" onClick={() => logout.mutate()}>
          Log out
        </button>
      </form>
    </main>
  );
}
