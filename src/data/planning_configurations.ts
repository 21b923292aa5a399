/**
 * A plan's configurations by nnU-Net's names: `configuration` is the one a run trains and
 * preprocesses for (its `name`, absent meaning 3d_fullres), `configurations` holds the others the
 * planner made (planning.ts). `selectConfiguration` returns the plan of one of them, the one
 * `train --configuration` and `preprocess --configuration` use; the plan it returns holds that
 * configuration only.
 */
import { InputError } from '../core/index.js';
import { CONFIGURATION_NAMES, DEFAULT_CONFIGURATION, type ConfigurationName, type Plan, type PlanConfiguration } from './planning_schema.js';

/** nnU-Net's name of a configuration (absent: 3d_fullres). */
export function configurationName(configuration: Pick<PlanConfiguration, 'name'>): ConfigurationName {
  return configuration.name ?? DEFAULT_CONFIGURATION;
}

/** The configuration names a plan holds, its own first. */
export function planConfigurationNames(plan: Plan): ConfigurationName[] {
  const others = CONFIGURATION_NAMES.filter((name) => plan.configurations?.[name] !== undefined);
  return [configurationName(plan.configuration), ...others];
}

/**
 * The plan with `name` as its configuration (and no others). A name that is not nnU-Net's, or one
 * the plan does not hold, is refused naming what the plan holds (exit 2).
 */
export function selectConfiguration(plan: Plan, name: string, option = '--configuration'): Plan {
  if (!(CONFIGURATION_NAMES as readonly string[]).includes(name)) {
    throw new InputError(`${option} '${name}' is not an nnU-Net configuration: use one of ${CONFIGURATION_NAMES.join(', ')}`, { code: 'unknown-configuration' });
  }
  const held = planConfigurationNames(plan);
  const { configurations, ...rest } = plan;
  if (configurationName(plan.configuration) === name) return rest;
  const chosen = configurations?.[name as ConfigurationName];
  if (chosen === undefined) {
    const why = name === '3d_lowres' || name === '3d_cascade_fullres' ? ' (nnU-Net plans a low resolution only when the full-resolution patch covers under a quarter of the median case)' : '';
    throw new InputError(`${option} ${name}: the plan holds ${held.join(', ')}${why}`, { code: 'unknown-configuration' });
  }
  return { ...rest, configuration: { ...chosen, name: name as ConfigurationName } };
}
