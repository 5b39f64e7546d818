/**
 * A fieldset of checkboxes over a list of names (a key's scopes, a webhook's events): which are
 * ticked is the caller's state, so a form can refuse to submit with none.
 */
export function Checkboxes(props: {
  legend: string;
  options: readonly string[];
  checked: readonly string[];
  onChange: (checked: string[]) => void;
}) {
  const toggle = (name: string, on: boolean) =>
    props.onChange(on ? [...props.checked, name] : props.checked.filter((x) => x !== name));
  return (
    <fieldset>
      <legend>{props.legend}</legend>
      {props.options.map((name) => (
        <label key={name} class="check">
          <input
            type="checkbox"
            checked={props.checked.includes(name)}
            onChange={(e) => toggle(name, e.currentTarget.checked)}
          />{" "}
          {name}
        </label>
      ))}
    </fieldset>
  );
}
