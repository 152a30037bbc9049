"""``GET /os-hypervisors/detail``: one entry per compute service (admin).

Capacity is what each compute recorded at start-up (``[compute] vcpus``,
``memory_mb``, ``disk_gb``, or the machine's); use is what the scheduler
has claimed there (``compute_nodes.*_used``: the instances placed on it,
and the target side of resizes not yet confirmed), as Nova reports from
placement; ``running_vms`` counts its instances that are not deleted.
"""

from nova_lite.api import common
from nova_lite.api import policies
from nova_lite import servicegroup

_NO_NODE = {'hypervisor_type': 'unknown', 'vcpus': 0, 'memory_mb': 0,
            'local_gb': 0, 'vcpus_used': 0, 'memory_mb_used': 0,
            'local_gb_used': 0}


def view(conf, service, node, running_vms):
    return {
        'id': service['id'],
        'hypervisor_hostname': service['host'],
        'state': servicegroup.status(service, conf.service_down_time),
        'status': 'disabled' if service['disabled'] else 'enabled',
        'hypervisor_type': node['hypervisor_type'],
        'hypervisor_version': 1000,
        'vcpus': node['vcpus'],
        'memory_mb': node['memory_mb'],
        'local_gb': node['local_gb'],
        'vcpus_used': node['vcpus_used'],
        'memory_mb_used': node['memory_mb_used'],
        'local_gb_used': node['local_gb_used'],
        'free_ram_mb': node['memory_mb'] - node['memory_mb_used'],
        'free_disk_gb': node['local_gb'] - node['local_gb_used'],
        'disk_available_least': node['local_gb'] - node['local_gb_used'],
        'current_workload': 0,
        'running_vms': running_vms,
        'cpu_info': '{}',
        'service': {'id': service['id'], 'host': service['host'],
                    'disabled_reason': service['disabled_reason']},
    }


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def detail(self, req):
        self.deps.policy.authorize(common.context_of(req),
                                   policies.HYPERVISORS_DETAIL)
        db = self.deps.db
        nodes = {node['host']: node for node in db.compute_node_get_all()}
        running = db.instance_count_by_host()
        return common.json_response({'hypervisors': [
            view(self.deps.conf, service, nodes.get(service['host'],
                                                    _NO_NODE),
                 running.get(service['host'], 0))
            for service in db.service_get_all(topic='compute')]})


def routes(deps):
    controller = Controller(deps)
    return [('GET', '/os-hypervisors/detail', controller.detail)]
