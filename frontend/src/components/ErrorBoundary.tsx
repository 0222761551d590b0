import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** Where "Back" goes (default: the projects list). */
  backTo?: string;
  backLabel?: string;
  /** Extra line under the message (e.g. that unsaved edits were kept on this device). */
  note?: string;
  children: ReactNode;
}

/** Shows what failed, with a way back, instead of a blank page when a render throws. */
export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.warn("Tessera: a page failed to render", error, info.componentStack);
  }

  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <main className="page error-boundary" role="alert" data-testid="error-boundary">
        <h1>Something went wrong on this page</h1>
        <p className="error">{error.message || String(error)}</p>
        {this.props.note && <p>{this.props.note}</p>}
        <p className="row">
          <button type="button" className="primary" onClick={() => window.location.reload()}>
            Reload
          </button>
          <a href={this.props.backTo ?? "/"}>{this.props.backLabel ?? "Back to the projects"}</a>
        </p>
      </main>
    );
  }
}
